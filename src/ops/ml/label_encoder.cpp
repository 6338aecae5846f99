// ai.onnx.ml LabelEncoder: maps each input element to a value through a key -> value table.
// Opset 1: string <-> int64 through the positions in `classes_strings`. Opset 2+: keys_* and
// values_* attributes (strings, int64s, floats); opset 4 adds keys_tensor / values_tensor /
// default_tensor. Float keys match NaN with NaN.
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

// Keys of any type, looked up by category: strings, integers (as int64), floats (as double).
class KeyTable {
 public:
  KeyTable(const KernelContext& ctx, const Tensor& keys) : dtype_(keys.dtype()) {
    for (int64_t i = 0; i < keys.numel(); ++i) {
      const auto pos = static_cast<size_t>(i);
      if (dtype_ == DType::String) {
        strings_.emplace(keys.strings()[pos], pos);
      } else if (is_float(dtype_)) {
        const double k = keys.get_f64(i);
        if (std::isnan(k)) {
          if (!nan_) nan_ = pos;
        } else {
          floats_.emplace(k, pos);
        }
      } else if (is_integer(dtype_) || dtype_ == DType::Bool) {
        ints_.emplace(keys.get_i64(i), pos);
      } else {
        ctx.unsupported("keys of element type " + std::string(dtype_name(dtype_)));
      }
    }
  }
  DType dtype() const { return dtype_; }
  // Position of the key equal to element i of x (which has the keys' type), or nullopt.
  std::optional<size_t> find(const Tensor& x, int64_t i) const {
    if (dtype_ == DType::String) {
      auto it = strings_.find(x.strings()[static_cast<size_t>(i)]);
      return it == strings_.end() ? std::nullopt : std::optional<size_t>(it->second);
    }
    if (is_float(dtype_)) {
      const double v = x.get_f64(i);
      if (std::isnan(v)) return nan_;
      auto it = floats_.find(v);
      return it == floats_.end() ? std::nullopt : std::optional<size_t>(it->second);
    }
    auto it = ints_.find(x.get_i64(i));
    return it == ints_.end() ? std::nullopt : std::optional<size_t>(it->second);
  }

 private:
  DType dtype_;
  std::unordered_map<std::string, size_t> strings_;
  std::map<int64_t, size_t> ints_;
  std::map<double, size_t> floats_;
  std::optional<size_t> nan_;
};

Tensor strings_tensor(const std::vector<std::string>& v) {
  Tensor t(DType::String, {static_cast<int64_t>(v.size())});
  t.strings() = v;
  return t;
}
Tensor ints_tensor(const std::vector<int64_t>& v) {
  Tensor t(DType::I64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}
Tensor floats_tensor(const std::vector<float>& v) {
  Tensor t(DType::F32, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}

// The one of `<prefix>strings`, `<prefix>int64s`, `<prefix>floats`, `<prefix>tensor` that the
// node sets; fails when none or several are set.
Tensor table_attr(const KernelContext& ctx, const std::string& prefix) {
  const ir::Node& n = ctx.node();
  std::vector<std::string> set;
  for (const char* suffix : {"strings", "int64s", "floats", "tensor"})
    if (n.has_attr(prefix + suffix)) set.push_back(prefix + suffix);
  if (set.size() != 1)
    ctx.fail("expected exactly one of " + prefix + "strings, " + prefix + "int64s, " + prefix +
             "floats, " + prefix + "tensor; got " + std::to_string(set.size()));
  const std::string& name = set[0];
  if (name == prefix + "strings") return strings_tensor(n.attr_strings(name));
  if (name == prefix + "int64s") return ints_tensor(n.attr_ints(name));
  if (name == prefix + "floats") return floats_tensor(n.attr_floats(name));
  const Tensor* t = n.attr_tensor(name);
  if (t == nullptr || !t->defined()) ctx.fail("attribute " + name + " is not a tensor");
  if (t->rank() != 1) ctx.fail("attribute " + name + " is " + t->describe() + "; expected 1-D");
  return *t;
}

// A one-element tensor of type `dt` holding the default value: default_tensor when given,
// else default_string / default_int64 / default_float (or their defaults for the type).
Tensor default_value(const KernelContext& ctx, DType dt) {
  if (const Tensor* t = ctx.node().attr_tensor("default_tensor"); t != nullptr) {
    if (t->dtype() != dt || t->numel() != 1)
      ctx.fail("default_tensor is " + t->describe() + "; expected one element of type " +
               std::string(dtype_name(dt)));
    return t->reshaped({1});
  }
  Tensor d(dt, {1});
  if (dt == DType::String) {
    d.strings()[0] = ctx.attr_string("default_string", "_Unused");
    return d;
  }
  const double v = is_float(dt) ? static_cast<double>(ctx.attr_float("default_float", -0.0f))
                                : static_cast<double>(ctx.attr_int("default_int64", -1));
  dispatch(dt, "LabelEncoder default value",
           [&]<typename T>() { d.data<T>()[0] = static_cast<T>(v); });
  return d;
}

// out[i] = src[j] for tensors of the same element type.
void copy_element(Tensor& out, int64_t i, const Tensor& src, int64_t j) {
  if (out.dtype() == DType::String) {
    out.strings()[static_cast<size_t>(i)] = src.strings()[static_cast<size_t>(j)];
    return;
  }
  const size_t es = dtype_size(out.dtype());
  std::memcpy(static_cast<unsigned char*>(out.raw()) + static_cast<size_t>(i) * es,
              static_cast<const unsigned char*>(src.raw()) + static_cast<size_t>(j) * es, es);
}

// Opset 1: strings map to their position in classes_strings, int64s to the string there.
void label_encoder_v1(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const auto classes = ctx.node().attr_strings("classes_strings");
  if (x.dtype() == DType::String) {
    const KeyTable keys(ctx, strings_tensor(classes));
    const int64_t dflt = ctx.attr_int("default_int64", -1);
    Tensor y(DType::I64, x.dims());
    for (int64_t i = 0; i < x.numel(); ++i) {
      const auto pos = keys.find(x, i);
      y.data<int64_t>()[i] = pos ? static_cast<int64_t>(*pos) : dflt;
    }
    ctx.set_output(0, std::move(y));
  } else if (x.dtype() == DType::I64) {
    const std::string dflt = ctx.attr_string("default_string", "_Unused");
    Tensor y(DType::String, x.dims());
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t k = x.data<int64_t>()[i];
      y.strings()[static_cast<size_t>(i)] = k >= 0 && k < static_cast<int64_t>(classes.size())
                                                ? classes[static_cast<size_t>(k)]
                                                : dflt;
    }
    ctx.set_output(0, std::move(y));
  } else {
    ctx.fail("input X has element type " + std::string(dtype_name(x.dtype())) +
             "; expected string or int64 (opset 1)");
  }
}

void label_encoder(KernelContext& ctx) {
  if (ctx.opset() < 2) return label_encoder_v1(ctx);
  const Tensor& x = ctx.input(0);
  const Tensor keys = table_attr(ctx, "keys_");
  const Tensor values = table_attr(ctx, "values_");
  if (keys.numel() != values.numel())
    ctx.fail("there are " + std::to_string(keys.numel()) + " keys but " +
             std::to_string(values.numel()) + " values; expected as many of each");
  if (x.dtype() != keys.dtype())
    ctx.fail("input X has element type " + std::string(dtype_name(x.dtype())) +
             " but the keys are " + std::string(dtype_name(keys.dtype())) +
             "; expected the same type");
  const KeyTable table(ctx, keys);
  const Tensor dflt = default_value(ctx, values.dtype());
  if (values.dtype() != DType::String && dtype_size(values.dtype()) == 0)
    ctx.unsupported("values of element type " + std::string(dtype_name(values.dtype())));
  Tensor y(values.dtype(), x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const auto pos = table.find(x, i);
    if (pos)
      copy_element(y, i, values, static_cast<int64_t>(*pos));
    else
      copy_element(y, i, dflt, 0);
  }
  ctx.set_output(0, std::move(y));
}

}  // namespace

KPT_REGISTER_OP("ai.onnx.ml", "LabelEncoder", 1, label_encoder);

}  // namespace kpt::ops
