#include "backends/cuda/cuda_plan.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <sstream>
#include <unordered_map>

#include "backends/cuda/fp8_product.hpp"
#include "ops/run_node.hpp"

namespace kpt::cuda {

namespace {

// Ops that read only their input's dims: their output is host-known when the dims are.
bool reads_dims_only(const ir::Node& n) {
  return n.domain.empty() && (n.op_type == "Shape" || n.op_type == "Size");
}

bool has_subgraph(const ir::Node& n) {
  for (const auto& [name, a] : n.attrs) {
    if (a.g || !a.graphs.empty()) return true;
  }
  return false;
}

std::string op_name(const ir::Node& n) {
  return (n.domain.empty() ? "" : n.domain + ".") + n.op_type;
}

std::string type_text(const PlanValue& v) {
  if (!v.type || v.type->kind != ir::Type::Kind::Tensor) return "?";
  std::string s(dtype_name(v.logical()));
  if (v.type->shape) s += ir::shape_to_string(*v.type->shape);
  return s;
}

// Bytes of a value whose shape is fully known, else -1.
int64_t static_bytes(const PlanValue& v) {
  if (!v.type || !v.type->shape) return -1;
  int64_t n = 1;
  for (const auto& d : *v.type->shape) {
    if (!d.known()) return -1;
    n *= d.value;
  }
  return n * static_cast<int64_t>(dtype_size(v.logical()));
}

GpuPrepareContext prepare_context(const CudaPlan& plan, const ir::Node& n, const PlanNode& pn,
                                  DType float_dtype, bool fp8 = false) {
  GpuPrepareContext ctx{n, {}, {}, {}, {}, float_dtype, fp8, {}, false, nullptr, -1};
  for (int v : pn.in) {
    const PlanValue* pv = v < 0 ? nullptr : &plan.values[static_cast<size_t>(v)];
    ctx.input_types.push_back(pv ? pv->type : nullptr);
    ctx.constants.push_back(pv ? pv->initializer : nullptr);
    ctx.host_known.push_back(pv && pv->host_known);
  }
  for (int v : pn.out) {
    ctx.output_types.push_back(v < 0 ? nullptr : plan.values[static_cast<size_t>(v)].type);
  }
  return ctx;
}

// A GPU Transpose swapping axes 1 and 2 of a 4-D value: [batch, seq, heads, head_dim] <->
// [batch, heads, seq, head_dim], the head split and merge around attention.
bool is_head_transpose(const ir::Node& n, const PlanNode& pn) {
  return pn.where == Placement::Gpu && n.domain.empty() && n.op_type == "Transpose" &&
         n.attr_ints("perm") == std::vector<int64_t>{0, 2, 1, 3};
}

// Attention reads Q, K, V and writes its output through strides (attention.hpp), so the head
// transposes around it need not move any data: each one whose only reader (or, after the node,
// only source) is the Attention node becomes a view, and the Attention kernel is told which
// operands stay [batch, seq, heads, head_dim]. On BERT-base this drops 4 of ~15 kernels a layer.
void skip_head_transposes(CudaPlan& plan, const ir::Graph& g, DType float_dtype) {
  std::vector<int> producer(plan.values.size(), -1), readers(plan.values.size(), 0);
  for (size_t k = 0; k < plan.nodes.size(); ++k) {
    for (int v : plan.nodes[k].in)
      if (v >= 0) readers[static_cast<size_t>(v)]++;
    for (int v : plan.nodes[k].out)
      if (v >= 0) producer[static_cast<size_t>(v)] = static_cast<int>(k);
  }
  auto private_value = [&](int v) {
    return v >= 0 && readers[static_cast<size_t>(v)] == 1 &&
           !plan.values[static_cast<size_t>(v)].graph_output;
  };
  auto reader_of = [&](int v) -> int {
    for (size_t k = 0; k < plan.nodes.size(); ++k) {
      for (int i : plan.nodes[k].in)
        if (i == v) return static_cast<int>(k);
    }
    return -1;
  };
  for (size_t k = 0; k < plan.nodes.size(); ++k) {
    PlanNode& pn = plan.nodes[k];
    const ir::Node& n = g.nodes[k];
    if (pn.where != Placement::Gpu || !n.domain.empty() || n.op_type != "Attention") continue;
    std::vector<int> skipped;
    GpuPrepareContext ctx = prepare_context(plan, n, pn, float_dtype);
    ctx.seq_major_inputs.assign(pn.in.size(), false);
    for (size_t i = 0; i < 3 && i < pn.in.size(); ++i) {
      const int v = pn.in[i];
      if (!private_value(v)) continue;
      const int p = producer[static_cast<size_t>(v)];
      if (p < 0 ||
          !is_head_transpose(g.nodes[static_cast<size_t>(p)], plan.nodes[static_cast<size_t>(p)]))
        continue;
      ctx.seq_major_inputs[i] = true;
      skipped.push_back(p);
    }
    if (!pn.out.empty() && private_value(pn.out[0])) {
      const int r = reader_of(pn.out[0]);
      if (r >= 0 &&
          is_head_transpose(g.nodes[static_cast<size_t>(r)], plan.nodes[static_cast<size_t>(r)])) {
        ctx.seq_major_output = true;
        skipped.push_back(r);
      }
    }
    if (skipped.empty()) continue;
    std::unique_ptr<GpuKernel> strided = GpuKernelRegistry::instance().prepare(ctx);
    if (!strided) continue;
    pn.kernel = std::move(strided);
    for (int t : skipped) {
      plan.nodes[static_cast<size_t>(t)].kernel = std::make_unique<LambdaGpuKernel>(
          "cuda.view(head transpose into attention)",
          [](GpuRunContext&, GpuArgs& a) { a.out[0] = a.in[0]->view(a.in[0]->dims()); },
          std::vector<bool>{false});
    }
  }
}

// A rank-2 initializer [K, N] (weights) or, with rank 1, [N] (bias); nullptr otherwise.
const Tensor* initializer_of_rank(const CudaPlan& plan, int v, size_t rank) {
  if (v < 0) return nullptr;
  const Tensor* t = plan.values[static_cast<size_t>(v)].initializer;
  return t && t->dims().size() == rank ? t : nullptr;
}

// kpt.MatMulBiasAct nodes without activation that project the same input by weights of the same
// shape (attention's Q, K and V) run as one batched GEMM: the first node computes every output
// (into one buffer, parts handed out), the others run nothing. Saves two launches per BERT layer.
void merge_sibling_projections(CudaPlan& plan, const ir::Graph& g, DType float_dtype, bool fp8) {
  // (input, K, N, has bias, weight dtype) -> nodes
  std::map<std::tuple<int, int64_t, int64_t, bool, int>, std::vector<size_t>> groups;
  for (size_t k = 0; k < plan.nodes.size(); ++k) {
    const PlanNode& pn = plan.nodes[k];
    const ir::Node& n = g.nodes[k];
    if (pn.where != Placement::Gpu || n.domain != "kpt" || n.op_type != "MatMulBiasAct" ||
        !n.attr_string("activation", "").empty() || pn.in.size() < 2 || pn.out.size() != 1)
      continue;
    const Tensor* w = initializer_of_rank(plan, pn.in[1], 2);
    if (!w) continue;
    const bool has_bias = pn.in.size() > 2 && pn.in[2] >= 0;
    const Tensor* b = has_bias ? initializer_of_rank(plan, pn.in[2], 1) : nullptr;
    if (has_bias && (!b || b->dtype() != w->dtype() || b->numel() != w->dims()[1])) continue;
    groups[{pn.in[0], w->dims()[0], w->dims()[1], has_bias, static_cast<int>(w->dtype())}]
        .push_back(k);
  }
  for (const auto& [key, members] : groups) {
    if (members.size() < 2) continue;
    const auto count = static_cast<int64_t>(members.size());
    const auto [x, kdim, ndim, has_bias, dtype_id] = key;
    const auto dtype = static_cast<DType>(dtype_id);
    const size_t w_bytes = static_cast<size_t>(kdim * ndim) * dtype_size(dtype);
    const size_t b_bytes = static_cast<size_t>(ndim) * dtype_size(dtype);
    auto weights = std::make_unique<Tensor>(dtype, Dims{count, kdim, ndim});
    auto bias = std::make_unique<Tensor>(dtype, Dims{count, ndim});
    std::vector<int> outs;
    for (size_t i = 0; i < members.size(); ++i) {
      const PlanNode& pn = plan.nodes[members[i]];
      std::memcpy(static_cast<char*>(weights->raw()) + i * w_bytes,
                  plan.values[static_cast<size_t>(pn.in[1])].initializer->raw(), w_bytes);
      if (has_bias)
        std::memcpy(static_cast<char*>(bias->raw()) + i * b_bytes,
                    plan.values[static_cast<size_t>(pn.in[2])].initializer->raw(), b_bytes);
      outs.push_back(pn.out[0]);
    }
    const size_t first = members.front();
    auto add_weight = [&](std::unique_ptr<Tensor> t, const std::string& name) {
      PlanValue v;
      v.name = name;
      ir::Shape shape;
      for (int64_t d : t->dims()) shape.push_back(ir::Dim::of(d));
      plan.owned_types.push_back(std::make_unique<ir::Type>(ir::Type::tensor(dtype, shape)));
      v.type = plan.owned_types.back().get();
      v.initializer = t.get();
      v.host_known = v.shape_known = v.on_device = true;
      v.last_use = static_cast<int>(first);
      plan.owned_tensors.push_back(std::move(t));
      plan.values.push_back(v);
      return static_cast<int>(plan.values.size() - 1);
    };
    const std::string base = plan.values[static_cast<size_t>(outs.front())].name;
    PlanNode& head = plan.nodes[first];
    head.in = {x, add_weight(std::move(weights), base + "/sibling_weights")};
    if (has_bias) head.in.push_back(add_weight(std::move(bias), base + "/sibling_bias"));
    head.out = outs;
    const Tensor* stacked = plan.values[static_cast<size_t>(head.in[1])].initializer;
    head.kernel = make_sibling_projections(float_dtype, count, has_bias,
                                           fp8 && fp8_weight_refusal(kdim, ndim).empty(), stacked);
    for (size_t i = 1; i < members.size(); ++i) {
      PlanNode& other = plan.nodes[members[i]];
      other.in.clear();
      other.out.clear();
      other.kernel = std::make_unique<LambdaGpuKernel>(
          "none(computed with a sibling projection)", [](GpuRunContext&, GpuArgs&) {},
          std::vector<bool>{});
    }
  }
}

// FP8: the quantize of an FP8 product's input X moves into the kernel that makes X where that
// kernel can write e4m3 as well: a LayerNorm or skip-LayerNorm writes an e4m3 copy beside its
// f16 output (the residual reads that), and an FP8 product whose output only the next FP8
// product reads (BERT's FFN in -> out) writes it in e4m3 only. An X that two FP8 products read
// (two scales) keeps their own quantize passes; so does attention's output.
void fuse_fp8_quantize(CudaPlan& plan, const ir::Graph& g, DType float_dtype) {
  const size_t nv = plan.values.size();
  std::vector<int> producer(nv, -1), readers(nv, 0), fp8_readers(nv, 0);
  for (size_t k = 0; k < plan.nodes.size(); ++k) {
    const PlanNode& pn = plan.nodes[k];
    for (int v : pn.in)
      if (v >= 0) readers[static_cast<size_t>(v)]++;
    if (dynamic_cast<Fp8ProductKernel*>(pn.kernel.get()) && !pn.in.empty() && pn.in[0] >= 0)
      fp8_readers[static_cast<size_t>(pn.in[0])]++;
    for (int v : pn.out)
      if (v >= 0) producer[static_cast<size_t>(v)] = static_cast<int>(k);
  }
  for (size_t k = 0; k < plan.nodes.size(); ++k) {
    auto* reader = dynamic_cast<Fp8ProductKernel*>(plan.nodes[k].kernel.get());
    if (!reader) continue;
    const int x = plan.nodes[k].in[0];
    if (x < 0 || fp8_readers[static_cast<size_t>(x)] != 1) continue;
    const int p = producer[static_cast<size_t>(x)];
    if (p < 0) continue;
    PlanNode& pp = plan.nodes[static_cast<size_t>(p)];
    const ir::Node& pnode = g.nodes[static_cast<size_t>(p)];
    if (pp.where != Placement::Gpu) continue;
    if (auto* up = dynamic_cast<Fp8ProductKernel*>(pp.kernel.get())) {
      if (readers[static_cast<size_t>(x)] == 1 &&
          !plan.values[static_cast<size_t>(x)].graph_output && pp.out.size() == 1) {
        up->write_e4m3_for(reader);
        reader->input_from_product(up);
      }
      continue;
    }
    const bool norm =
        (pnode.domain.empty() && pnode.op_type == "LayerNormalization") ||
        (pnode.domain == "com.microsoft" && pnode.op_type == "SkipLayerNormalization");
    if (!norm || pp.out.empty() || pp.out[0] != x) continue;
    GpuPrepareContext ctx = prepare_context(plan, pnode, pp, float_dtype, true);
    ctx.fp8_reader = reader;
    ctx.output_value = x;
    if (auto fused = GpuKernelRegistry::instance().prepare(ctx)) {
      pp.kernel = std::move(fused);
      reader->input_from_norm();
    }
  }
}

}  // namespace

DType PlanValue::logical() const {
  return type && type->kind == ir::Type::Kind::Tensor ? type->elem : DType::Undefined;
}

int CudaPlan::id(const std::string& name) const {
  if (name.empty()) return -1;
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

CudaPlan make_cuda_plan(const ir::Graph& g, DType float_dtype, bool fp8) {
  CudaPlan plan;
  std::unordered_map<std::string, int> ids;
  auto value_id = [&](const std::string& name) -> int {
    if (name.empty()) return -1;
    auto it = ids.find(name);
    if (it != ids.end()) return it->second;
    PlanValue v;
    v.name = name;
    auto t = g.value_types.find(name);
    if (t != g.value_types.end() && t->second.kind != ir::Type::Kind::Unknown) v.type = &t->second;
    auto init = g.initializers.find(name);
    if (init != g.initializers.end()) {
      v.initializer = &init->second;
      if (!v.type) {
        ir::Shape shape;
        for (int64_t d : init->second.dims()) shape.push_back(ir::Dim::of(d));
        plan.owned_types.push_back(
            std::make_unique<ir::Type>(ir::Type::tensor(init->second.dtype(), shape)));
        v.type = plan.owned_types.back().get();
      }
      v.host_known = true;
      v.shape_known = true;
    }
    plan.values.push_back(v);
    return ids[name] = static_cast<int>(plan.values.size() - 1);
  };
  for (const auto& i : g.inputs) {
    const int id = value_id(i.name);
    PlanValue& v = plan.values[static_cast<size_t>(id)];
    if (!v.type) v.type = &i.type;
    v.shape_known = true;
    // An input with an initializer can be overridden by the caller: not host-known.
    v.host_known = false;
    v.initializer = nullptr;
    plan.inputs.push_back(id);
  }

  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const ir::Node& n = g.nodes[k];
    PlanNode pn;
    for (const auto& name : n.inputs) pn.in.push_back(value_id(name));
    for (const auto& name : n.outputs) pn.out.push_back(value_id(name));
    if (has_subgraph(n))
      throw Unsupported(n.label() + ": control flow (subgraphs) does not run on target cuda yet");

    bool inputs_known = true, shapes_known = true;
    for (int v : pn.in) {
      if (v < 0) continue;
      const PlanValue& pv = plan.values[static_cast<size_t>(v)];
      inputs_known = inputs_known && (reads_dims_only(n) ? pv.shape_known : pv.host_known);
      shapes_known = shapes_known && (pv.shape_known || pv.host_known);
    }
    if (inputs_known && !ops::is_nondeterministic(n)) {
      pn.where = Placement::Host;
    } else {
      // Only tensors live in device memory: sequences and optionals stay on the CPU.
      bool tensors_only = true;
      for (int v : pn.in) {
        const ir::Type* t = v < 0 ? nullptr : plan.values[static_cast<size_t>(v)].type;
        tensors_only = tensors_only && (!t || t->kind == ir::Type::Kind::Tensor);
      }
      for (int v : pn.out) {
        const ir::Type* t = v < 0 ? nullptr : plan.values[static_cast<size_t>(v)].type;
        tensors_only = tensors_only && (!t || t->kind == ir::Type::Kind::Tensor);
      }
      if (tensors_only)
        pn.kernel =
            GpuKernelRegistry::instance().prepare(prepare_context(plan, n, pn, float_dtype, fp8));
      if (pn.kernel) {
        for (size_t i = 0; i < pn.in.size(); ++i) {
          if (pn.in[i] >= 0 && pn.kernel->host_inputs[i] &&
              !plan.values[static_cast<size_t>(pn.in[i])].host_known) {
            pn.kernel.reset();  // it would read a device value on the host
            break;
          }
        }
      }
      pn.where = pn.kernel ? Placement::Gpu : Placement::Cpu;
    }
    for (size_t i = 0; i < pn.in.size(); ++i) {
      const int v = pn.in[i];
      if (v < 0) continue;
      PlanValue& pv = plan.values[static_cast<size_t>(v)];
      pv.last_use = static_cast<int>(k);
      if (pn.where == Placement::Gpu && !pn.kernel->host_inputs[i]) pv.on_device = true;
    }
    for (int v : pn.out) {
      if (v < 0) continue;
      PlanValue& pv = plan.values[static_cast<size_t>(v)];
      pv.host_known = pn.where == Placement::Host;
      // GPU kernels size outputs from input dims and host-known inputs; a CPU fallback's output
      // dims may depend on data (NonZero), so they are not fixed by the signature.
      pv.shape_known = pn.where == Placement::Host || (pn.where == Placement::Gpu && shapes_known);
    }
    plan.nodes.push_back(std::move(pn));
  }
  for (const auto& o : g.outputs) {
    const int id = value_id(o.name);
    plan.values[static_cast<size_t>(id)].graph_output = true;
    plan.values[static_cast<size_t>(id)].last_use = INT_MAX;
    plan.outputs.push_back(id);
  }
  skip_head_transposes(plan, g, float_dtype);
  merge_sibling_projections(plan, g, float_dtype, fp8);
  if (fp8) fuse_fp8_quantize(plan, g, float_dtype);

  // Where each value is during a run, to list the copies.
  std::vector<char> on_host(plan.values.size(), 0), on_dev(plan.values.size(), 0);
  for (size_t v = 0; v < plan.values.size(); ++v) {
    on_host[v] = plan.values[v].initializer != nullptr;
    on_dev[v] = plan.values[v].initializer != nullptr && plan.values[v].on_device;  // weights
  }
  for (int v : plan.inputs) on_host[static_cast<size_t>(v)] = 1;
  for (size_t k = 0; k < plan.nodes.size(); ++k) {
    const PlanNode& pn = plan.nodes[k];
    const ir::Node& n = g.nodes[k];
    for (size_t i = 0; i < pn.in.size(); ++i) {
      const int v = pn.in[i];
      if (v < 0) continue;
      const auto vi = static_cast<size_t>(v);
      const bool device_read = pn.where == Placement::Gpu && !pn.kernel->host_inputs[i];
      if (device_read && !on_dev[vi]) {
        const bool graph_input =
            std::find(plan.inputs.begin(), plan.inputs.end(), v) != plan.inputs.end();
        plan.copies.push_back({v, true, plan.values[vi].host_known,
                               graph_input ? "graph input" : "for " + op_name(n) + " on the GPU"});
        on_dev[vi] = 1;
      }
      const bool host_read =
          pn.where == Placement::Cpu || (pn.where == Placement::Gpu && pn.kernel->host_inputs[i]);
      if (host_read && !on_host[vi]) {
        plan.copies.push_back({v, false, false, "for " + op_name(n) + " on the CPU"});
        on_host[vi] = 1;
      }
    }
    for (int v : pn.out) {
      if (v < 0) continue;
      on_host[static_cast<size_t>(v)] = pn.where != Placement::Gpu;
      on_dev[static_cast<size_t>(v)] = pn.where == Placement::Gpu;
    }
    if (pn.where == Placement::Cpu && plan.no_graph_reason.empty()) {
      plan.no_graph_reason = op_name(n) + " runs on the CPU (" + n.label() + ")";
    }
  }
  for (int v : plan.outputs) {
    if (!on_host[static_cast<size_t>(v)]) plan.copies.push_back({v, false, false, "graph output"});
  }
  return plan;
}

std::string CudaPlan::report(const ir::Graph& g) const {
  std::map<std::string, int> gpu, host, cpu;
  std::map<std::string, int> kernels;
  for (size_t k = 0; k < nodes.size(); ++k) {
    const std::string op = op_name(g.nodes[k]);
    switch (nodes[k].where) {
      case Placement::Gpu:
        gpu[op]++;
        kernels[nodes[k].kernel->name()]++;
        break;
      case Placement::Host:
        host[op]++;
        break;
      case Placement::Cpu:
        cpu[op]++;
        break;
    }
  }
  auto line = [](const std::map<std::string, int>& m) {
    int total = 0;
    std::string s;
    for (const auto& [op, n] : m) {
      total += n;
      s += (s.empty() ? "" : ", ") + op + " " + std::to_string(n);
    }
    return std::to_string(total) + (s.empty() ? "" : " (" + s + ")");
  };
  std::ostringstream o;
  o << "gpu nodes     " << line(gpu) << "\n";
  o << "gpu kernels   " << line(kernels) << "\n";
  o << "host nodes    " << line(host) << "  [shape/constant work, once per input shape]\n";
  o << "cpu fallbacks " << line(cpu) << "\n";
  int per_run = 0;
  int64_t run_bytes = 0;
  bool bytes_known = true;
  for (const auto& c : copies) {
    if (c.per_shape) continue;
    ++per_run;
    const int64_t b = static_bytes(values[static_cast<size_t>(c.value)]);
    if (b < 0) bytes_known = false;
    run_bytes += std::max<int64_t>(b, 0);
  }
  o << "copies/run    " << per_run << " ("
    << (bytes_known ? std::to_string(run_bytes) + " bytes" : "bytes depend on the input shapes")
    << ")\n";
  for (const auto& c : copies) {
    const PlanValue& v = values[static_cast<size_t>(c.value)];
    o << "  " << (c.to_device ? "upload   " : "download ") << v.name << " " << type_text(v) << "  "
      << c.why << (c.per_shape ? " (once per input shape)" : "") << "\n";
  }
  o << "cuda graph    "
    << (no_graph_reason.empty() ? "whole run capturable" : "not used: " + no_graph_reason) << "\n";
  return o.str();
}

}  // namespace kpt::cuda
