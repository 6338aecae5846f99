#include "analysis/flops.hpp"

#include <set>

#include "analysis/symbolic_dim.hpp"

namespace kpt::analysis {

namespace {

// Ops that only move, index or describe data.
const std::set<std::string> kDataMovement = {
    "Reshape",  "Transpose",       "Shape",        "Size",
    "Gather",   "GatherElements",  "GatherND",     "Concat",
    "Slice",    "Squeeze",         "Unsqueeze",    "Flatten",
    "Expand",   "Identity",        "Split",        "Tile",
    "Pad",      "ConstantOfShape", "Range",        "Cast",
    "CastLike", "Dropout",         "ScatterND",    "ScatterElements",
    "NonZero",  "DepthToSpace",    "SpaceToDepth", "EyeLike",
    "OneHot",   "Trilu",           "Compress",     "ReverseSequence",
    "Constant"};

// Ops costed at one operation per output element.
const std::set<std::string> kPerOutputElement = {"Add",
                                                 "Sub",
                                                 "Mul",
                                                 "Div",
                                                 "Pow",
                                                 "Mod",
                                                 "Neg",
                                                 "Abs",
                                                 "Exp",
                                                 "Log",
                                                 "Sqrt",
                                                 "Reciprocal",
                                                 "Relu",
                                                 "Sigmoid",
                                                 "Tanh",
                                                 "Erf",
                                                 "Gelu",
                                                 "Softmax",
                                                 "LogSoftmax",
                                                 "Hardmax",
                                                 "Ceil",
                                                 "Floor",
                                                 "Round",
                                                 "Sign",
                                                 "Sin",
                                                 "Cos",
                                                 "Tan",
                                                 "Asin",
                                                 "Acos",
                                                 "Atan",
                                                 "Sinh",
                                                 "Cosh",
                                                 "Asinh",
                                                 "Acosh",
                                                 "Atanh",
                                                 "HardSigmoid",
                                                 "HardSwish",
                                                 "LeakyRelu",
                                                 "Elu",
                                                 "Selu",
                                                 "Celu",
                                                 "Softplus",
                                                 "Softsign",
                                                 "Mish",
                                                 "ThresholdedRelu",
                                                 "Clip",
                                                 "Shrink",
                                                 "PRelu",
                                                 "Max",
                                                 "Min",
                                                 "Sum",
                                                 "Mean",
                                                 "Equal",
                                                 "Less",
                                                 "Greater",
                                                 "LessOrEqual",
                                                 "GreaterOrEqual",
                                                 "And",
                                                 "Or",
                                                 "Xor",
                                                 "Not",
                                                 "Where",
                                                 "IsNaN",
                                                 "IsInf",
                                                 "BitShift",
                                                 "BitwiseAnd",
                                                 "BitwiseOr",
                                                 "BitwiseXor",
                                                 "BitwiseNot",
                                                 "LayerNormalization",
                                                 "BatchNormalization",
                                                 "InstanceNormalization",
                                                 "GroupNormalization",
                                                 "RMSNormalization",
                                                 "LpNormalization",
                                                 "MeanVarianceNormalization",
                                                 "LRN",
                                                 "CumSum"};

const std::set<std::string> kReductions = {
    "ReduceSum", "ReduceMean", "ReduceMax",         "ReduceMin",       "ReduceProd",
    "ReduceL1",  "ReduceL2",   "ReduceLogSum",      "ReduceLogSumExp", "ReduceSumSquare",
    "ArgMax",    "ArgMin",     "GlobalAveragePool", "GlobalMaxPool",   "GlobalLpPool"};

std::optional<std::vector<int64_t>> static_shape(const ir::Graph& g, const std::string& name) {
  if (name.empty()) return std::nullopt;
  auto it = g.initializers.find(name);
  if (it != g.initializers.end()) return it->second.dims();
  const ir::Type* t = g.type_of(name);
  if (!t || t->kind != ir::Type::Kind::Tensor || !t->shape) return std::nullopt;
  return known_values(*t->shape);
}

double elements(const std::vector<int64_t>& dims) {
  double n = 1;
  for (int64_t d : dims) n *= static_cast<double>(d);
  return n;
}

std::optional<double> input_elements(const ir::Graph& g, const ir::Node& n, size_t i) {
  if (i >= n.inputs.size()) return std::nullopt;
  auto s = static_shape(g, n.inputs[i]);
  if (!s) return std::nullopt;
  return elements(*s);
}

std::optional<double> output_elements(const ir::Graph& g, const ir::Node& n) {
  if (n.outputs.empty()) return std::nullopt;
  auto s = static_shape(g, n.outputs[0]);
  if (!s) return std::nullopt;
  return elements(*s);
}

std::optional<double> matmul_flops(const ir::Graph& g, const ir::Node& n) {
  auto a = static_shape(g, n.inputs[0]);
  auto out = output_elements(g, n);
  if (!a || !out || a->empty()) return std::nullopt;
  return 2.0 * *out * static_cast<double>(a->back());
}

std::optional<double> gemm_flops(const ir::Graph& g, const ir::Node& n) {
  auto a = static_shape(g, n.inputs[0]);
  auto out = output_elements(g, n);
  if (!a || !out || a->size() != 2) return std::nullopt;
  const int64_t k = n.attr_int("transA", 0) ? (*a)[0] : (*a)[1];
  return 2.0 * *out * static_cast<double>(k);
}

// Weight [M, Cin/group, k...]: every output element sums Cin/group * prod(k) products.
std::optional<double> conv_flops(const ir::Graph& g, const ir::Node& n) {
  auto w = n.inputs.size() > 1 ? static_shape(g, n.inputs[1]) : std::nullopt;
  auto out = output_elements(g, n);
  if (!w || !out || w->size() < 3) return std::nullopt;
  const std::vector<int64_t> per_output(w->begin() + 1, w->end());
  return 2.0 * *out * elements(per_output);
}

// Weight [Cin, Cout/group, k...]: every input element scatters into Cout/group * prod(k).
std::optional<double> conv_transpose_flops(const ir::Graph& g, const ir::Node& n) {
  auto w = n.inputs.size() > 1 ? static_shape(g, n.inputs[1]) : std::nullopt;
  auto in = input_elements(g, n, 0);
  if (!w || !in || w->size() < 3) return std::nullopt;
  const std::vector<int64_t> per_input(w->begin() + 1, w->end());
  return 2.0 * *in * elements(per_input);
}

std::optional<double> pool_flops(const ir::Graph& g, const ir::Node& n) {
  auto out = output_elements(g, n);
  if (!out) return std::nullopt;
  return *out * elements(n.attr_ints("kernel_shape"));
}

// Q·Kᵀ and P·V: 2*B*Hq*Sq*Skv*(Dh + Dv).
std::optional<double> attention_flops(const ir::Graph& g, const ir::Node& n) {
  auto q = static_shape(g, n.inputs[0]);
  auto k = n.inputs.size() > 1 ? static_shape(g, n.inputs[1]) : std::nullopt;
  auto out = static_shape(g, n.outputs[0]);
  if (!q || !k || !out || q->size() != k->size()) return std::nullopt;
  if (q->size() == 4) {
    const double b = static_cast<double>((*q)[0]), h = static_cast<double>((*q)[1]);
    const double sq = static_cast<double>((*q)[2]), skv = static_cast<double>((*k)[2]);
    return 2.0 * b * h * sq * skv * static_cast<double>((*q)[3] + (*out)[3]);
  }
  if (q->size() == 3) {
    // [B, S, H*D]: the head split does not change the count of products.
    const double b = static_cast<double>((*q)[0]), sq = static_cast<double>((*q)[1]);
    const double skv = static_cast<double>((*k)[1]);
    return 2.0 * b * sq * skv * static_cast<double>((*q)[2] + (*out)[2]);
  }
  return std::nullopt;
}

void count_into(const ir::Graph& g, FlopCount& c) {
  for (const auto& node : g.nodes) {
    const std::string op = (node.domain.empty() ? "" : node.domain + ".") + node.op_type;
    auto f = node_flops(g, node);
    if (f) {
      c.total += *f;
      c.by_op[op] += *f;
      ++c.nodes_counted;
    } else {
      ++c.unknown_by_op[op];
    }
    for (const auto& [name, a] : node.attrs) {
      if (a.g) count_into(*a.g, c);
      for (const auto& sg : a.graphs) count_into(*sg, c);
    }
  }
}

void parameters_into(const ir::Graph& g, ParameterCount& p) {
  for (const auto& [name, t] : g.initializers) {
    ++p.tensors;
    p.elements += t.numel();
    p.bytes += static_cast<int64_t>(t.nbytes());
  }
  for (const auto& node : g.nodes) {
    for (const auto& [name, a] : node.attrs) {
      if (a.g) parameters_into(*a.g, p);
      for (const auto& sg : a.graphs) parameters_into(*sg, p);
    }
  }
}

}  // namespace

std::optional<double> node_flops(const ir::Graph& g, const ir::Node& node) {
  if (!node.domain.empty()) return std::nullopt;
  const std::string& op = node.op_type;
  if (kDataMovement.count(op)) return 0.0;
  if (op == "MatMul" || op == "MatMulInteger") return matmul_flops(g, node);
  if (op == "Gemm") return gemm_flops(g, node);
  if (op == "Conv") return conv_flops(g, node);
  if (op == "ConvTranspose") return conv_transpose_flops(g, node);
  if (op == "MaxPool" || op == "AveragePool" || op == "LpPool") return pool_flops(g, node);
  if (op == "Attention") return attention_flops(g, node);
  if (kReductions.count(op)) return input_elements(g, node, 0);
  if (kPerOutputElement.count(op)) return output_elements(g, node);
  return std::nullopt;
}

FlopCount count_flops(const ir::Graph& g) {
  FlopCount c;
  count_into(g, c);
  return c;
}

ParameterCount count_parameters(const ir::Graph& g) {
  ParameterCount p;
  parameters_into(g, p);
  return p;
}

}  // namespace kpt::analysis
