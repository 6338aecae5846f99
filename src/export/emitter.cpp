#include "export/emitter.hpp"

#include "core/cast.hpp"
#include "kpt/error.hpp"

namespace kpt::onnx_export {

ir::Attribute attr_tensor(const std::string& name, Tensor t) {
  ir::Attribute a;
  a.name = name;
  a.kind = ir::Attribute::Kind::Tensor;
  a.t = std::move(t);
  return a;
}

std::string Emitter::fresh(const std::string& suffix) {
  const std::string base = base_ + "_" + suffix;
  std::string name = base;
  for (int i = 1; taken_.count(name) != 0; ++i) name = base + "_" + std::to_string(i);
  taken_.insert(name);
  return name;
}

ir::Node& Emitter::op_to(const std::string& op_type, std::vector<std::string> inputs,
                         std::vector<std::string> outputs,
                         std::map<std::string, ir::Attribute> attrs, const std::string& domain) {
  ir::Node n;
  n.op_type = op_type;
  n.domain = domain;
  n.opset = domain.empty() ? opset_ : 1;
  n.name = fresh(op_type);
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  n.attrs = std::move(attrs);
  nodes_.push_back(std::move(n));
  return nodes_.back();
}

std::string Emitter::op(const std::string& op_type, std::vector<std::string> inputs,
                        std::map<std::string, ir::Attribute> attrs, const std::string& domain) {
  const std::string out = fresh(op_type + "_out");
  op_to(op_type, std::move(inputs), {out}, std::move(attrs), domain);
  return out;
}

void Emitter::finish(const std::string& value, const std::string& name) {
  if (value == name) return;
  if (!nodes_.empty()) {
    for (auto& o : nodes_.back().outputs) {
      if (o == value) {
        o = name;
        return;
      }
    }
  }
  op_to("Identity", {value}, {name});
}

std::string Emitter::constant(Tensor t, const std::string& suffix) {
  const std::string name = fresh(suffix);
  g_.initializers[name] = std::move(t);
  return name;
}

std::string Emitter::scalar(DType dtype, double v, const std::string& suffix) {
  Tensor s(DType::F64, {});
  s.data<double>()[0] = v;
  return constant(cast_tensor(s, dtype), suffix);
}

std::string Emitter::ints(std::vector<int64_t> v, const std::string& suffix) {
  Tensor t(DType::I64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return constant(std::move(t), suffix);
}

std::string Emitter::unsqueeze(const std::string& x, std::vector<int64_t> axes) {
  if (opset_ >= 13) return op("Unsqueeze", {x, ints(axes, "axes")});
  return op("Unsqueeze", {x}, {{"axes", ir::Attribute::of_ints("axes", axes)}});
}

std::string Emitter::reduce_mean(const std::string& x, std::vector<int64_t> axes) {
  const auto keep = ir::Attribute::of_int("keepdims", 1);
  if (opset_ >= 18) return op("ReduceMean", {x, ints(axes, "axes")}, {{"keepdims", keep}});
  return op("ReduceMean", {x},
            {{"axes", ir::Attribute::of_ints("axes", axes)}, {"keepdims", keep}});
}

std::string Emitter::slice(const std::string& x, int64_t start, int64_t end, int64_t axis) {
  check(opset_ >= 10, "exporting needs Slice with inputs (opset >= 10); the model has opset " +
                          std::to_string(opset_));
  return op("Slice", {x, ints({start}, "starts"), ints({end}, "ends"), ints({axis}, "axes")});
}

std::string Emitter::transpose(const std::string& x, std::vector<int64_t> perm) {
  return op("Transpose", {x}, {{"perm", ir::Attribute::of_ints("perm", std::move(perm))}});
}

std::string Emitter::concat(std::vector<std::string> parts, int64_t axis) {
  return op("Concat", std::move(parts), {{"axis", ir::Attribute::of_int("axis", axis)}});
}

std::string Emitter::shape_slice(const std::string& x, int64_t start, int64_t end) {
  return slice(op("Shape", {x}), start, end, 0);
}

const ir::Shape* Emitter::shape_of(const std::string& v) const {
  if (auto it = g_.initializers.find(v); it != g_.initializers.end()) return nullptr;
  const ir::Type* t = g_.type_of(v);
  if (!t || t->kind != ir::Type::Kind::Tensor || !t->shape) return nullptr;
  return &*t->shape;
}

std::optional<ir::Dim> Emitter::dim(const std::string& v, size_t rank, size_t d) const {
  if (auto it = g_.initializers.find(v); it != g_.initializers.end()) {
    if (it->second.rank() != rank) return std::nullopt;
    return ir::Dim::of(it->second.dim(static_cast<int64_t>(d)));
  }
  const ir::Shape* s = shape_of(v);
  if (!s || s->size() != rank) return std::nullopt;
  return (*s)[d];
}

std::optional<size_t> Emitter::rank_of(const std::string& v) const {
  if (auto it = g_.initializers.find(v); it != g_.initializers.end()) return it->second.rank();
  const ir::Shape* s = shape_of(v);
  return s ? std::optional<size_t>(s->size()) : std::nullopt;
}

DType Emitter::dtype_of(const std::string& v) const {
  if (auto it = g_.initializers.find(v); it != g_.initializers.end()) return it->second.dtype();
  const ir::Type* t = g_.type_of(v);
  if (t && t->kind == ir::Type::Kind::Tensor && t->elem != DType::Undefined) return t->elem;
  return DType::F32;
}

}  // namespace kpt::onnx_export
