#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kpt/error.hpp"
#include "kpt/value.hpp"

namespace kpt::ops {

// Runs a subgraph (If/Loop/Scan bodies) with the given inputs; the subgraph may read values
// of the scopes that enclose it. Provided by the runtime.
using SubgraphRunner =
    std::function<std::vector<Value>(const ir::Graph& body, const std::vector<Value>& inputs)>;

// What a reference kernel sees: its node (attributes, opset), its inputs (nullptr where an
// optional input is omitted) and the outputs it must fill.
class KernelContext {
 public:
  KernelContext(const ir::Node& node, std::vector<const Value*> inputs, std::vector<Value>& outputs,
                const SubgraphRunner* run_subgraph)
      : node_(node), inputs_(std::move(inputs)), outputs_(outputs), run_subgraph_(run_subgraph) {}

  const ir::Node& node() const { return node_; }
  int opset() const { return node_.opset; }

  size_t num_inputs() const { return inputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  const Value& value(size_t i) const;   // fails if absent
  const Tensor& input(size_t i) const;  // fails if absent or not a tensor
  size_t num_outputs() const { return outputs_.size(); }
  bool wants_output(size_t i) const;    // output i exists and has a name
  void set_output(size_t i, Tensor t);  // ignored when the output is not wanted
  // A tensor for output i whose contents are undefined until the kernel writes them: from the
  // session's memory plan when it has one (see runtime/memory_plan), else freshly allocated.
  // The kernel still passes it to set_output.
  Tensor allocate_output(size_t i, DType dtype, Dims dims) const;
  // Where allocate_output gets memory; set by the executor.
  using OutputAllocator = std::function<Tensor(const ir::Node&, size_t, DType, const Dims&)>;
  void set_output_allocator(const OutputAllocator* a) { allocator_ = a; }
  void set_output_value(size_t i, Value v);

  std::vector<Value> run_subgraph(const ir::Graph& body, const std::vector<Value>& inputs) const;

  // Attribute access with defaults (forwarded to the node).
  int64_t attr_int(const std::string& n, int64_t dflt) const { return node_.attr_int(n, dflt); }
  float attr_float(const std::string& n, float dflt) const { return node_.attr_float(n, dflt); }
  std::string attr_string(const std::string& n, const std::string& dflt) const {
    return node_.attr_string(n, dflt);
  }
  std::vector<int64_t> attr_ints(const std::string& n, std::vector<int64_t> dflt = {}) const {
    return node_.attr_ints(n, std::move(dflt));
  }
  std::vector<float> attr_floats(const std::string& n, std::vector<float> dflt = {}) const {
    return node_.attr_floats(n, std::move(dflt));
  }

  // Fails with "<node label>: <message>".
  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void unsupported(const std::string& message) const;
  void check(bool cond, const std::string& message) const {
    if (!cond) fail(message);
  }
  // Builds the message only when the check fails (for checks on every run's shapes).
  template <std::invocable MakeMessage>
  void check(bool cond, MakeMessage&& make_message) const {
    if (!cond) fail(make_message());
  }

 private:
  const ir::Node& node_;
  std::vector<const Value*> inputs_;
  std::vector<Value>& outputs_;
  const SubgraphRunner* run_subgraph_;
  const OutputAllocator* allocator_ = nullptr;
};

using KernelFn = void (*)(KernelContext&);

// Type and shape inference for one node: given input types, fill output types. Inputs whose
// values are known at load time (initializers, folded constants) are passed in `constants`
// (nullptr otherwise) so that Reshape/Slice/... can infer exact shapes.
struct InferContext {
  const ir::Node& node;
  std::vector<const ir::Type*> inputs;  // nullptr for omitted inputs or unknown types
  std::vector<const Tensor*> constants;
  std::vector<ir::Type> outputs;  // sized to node.outputs
  // Shape arithmetic (Shape -> Gather -> Concat -> Reshape) on symbolic dims: for each input
  // that is a small integer tensor whose elements are known as dims ("batch", 768), one Dim
  // per element (a scalar has one; negative elements are spelled by analysis::int_dim, see
  // src/analysis/symbolic_dim.hpp); nullptr otherwise. Infer functions that compute such
  // values for their outputs set `output_values` (sized to node.outputs by the caller).
  std::vector<const ir::Shape*> input_values = {};
  std::vector<std::optional<ir::Shape>> output_values = {};
};
using InferFn = void (*)(InferContext&);

struct OpEntry {
  std::string domain;
  std::string op_type;
  int since_version = 1;  // the kernel handles opsets >= since_version (until the next entry)
  KernelFn kernel = nullptr;
  InferFn infer = nullptr;
};

// The one op registry. Each op file registers its kernels with KPT_REGISTER_OP at static
// initialization time.
class Registry {
 public:
  static Registry& instance();
  void add(OpEntry e);
  // The entry with the greatest since_version <= opset, or nullptr.
  const OpEntry* find(const std::string& domain, const std::string& op_type, int opset) const;
  bool knows(const std::string& domain, const std::string& op_type) const;
  std::vector<OpEntry> entries() const;

  // Inference functions registered apart from kernels (KPT_REGISTER_INFER), so that shape
  // inference covers ops whose kernels live elsewhere or do not exist yet.
  void add_infer(const std::string& domain, const std::string& op_type, InferFn fn);
  // The infer function for an op: one registered with KPT_REGISTER_INFER, else the `infer`
  // of the kernel entry find() picks; nullptr when neither exists.
  InferFn find_infer(const std::string& domain, const std::string& op_type, int opset) const;
  // Every (domain, op_type) that has an infer function of either kind.
  std::vector<std::pair<std::string, std::string>> ops_with_inference() const;

 private:
  std::vector<OpEntry> entries_;
  std::map<std::pair<std::string, std::string>, InferFn> infers_;
};

struct Registrar {
  Registrar(const char* domain, const char* op, int since, KernelFn k, InferFn inf = nullptr) {
    Registry::instance().add(OpEntry{domain, op, since, k, inf});
  }
};

struct InferRegistrar {
  InferRegistrar(const char* domain, const char* op, InferFn fn) {
    Registry::instance().add_infer(domain, op, fn);
  }
};

#define KPT_CAT2(a, b) a##b
#define KPT_CAT(a, b) KPT_CAT2(a, b)
// KPT_REGISTER_OP("", "Add", 7, add_kernel[, add_infer])
#define KPT_REGISTER_OP(domain, op, since, ...)                                              \
  static const ::kpt::ops::Registrar KPT_CAT(kpt_registrar_, __COUNTER__)(domain, op, since, \
                                                                          __VA_ARGS__)

// KPT_REGISTER_INFER("", "MatMul", infer_matmul): one function for every opset of the op;
// it reads the node's opset where the op changed (Squeeze's axes attribute -> input).
#define KPT_REGISTER_INFER(domain, op, fn) \
  static const ::kpt::ops::InferRegistrar KPT_CAT(kpt_infer_registrar_, __COUNTER__)(domain, op, fn)

}  // namespace kpt::ops
