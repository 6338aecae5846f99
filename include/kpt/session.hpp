#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kpt/tensor.hpp"
#include "kpt/value.hpp"

namespace kpt {

namespace ir {
struct Graph;
struct Model;
}  // namespace ir

// A declared input or output of a model. Dims of -1 are dynamic; `symbols` holds the name of
// each symbolic dim ("" where the dim is fixed or unnamed).
struct IoInfo {
  std::string name;
  std::string kind = "tensor";  // "tensor", "sequence" or "optional"
  DType dtype = DType::Undefined;
  bool has_shape = false;
  Dims dims;
  std::vector<std::string> symbols;
};

// How much the graph optimizer may rewrite the model (see docs/ARCHITECTURE: passes).
enum class OptimizationLevel { None = 0, Basic = 1, Extended = 2, All = 3 };

// Numeric precision of the fast kernels. FP32 matches the reference kernels within
// tolerance; BF16 and INT8 lower MatMul/Gemm/Conv (fp32 accumulation); Auto picks per layer
// the fastest choice that keeps outputs within the accuracy budget. On target cuda, FP16 and
// BF16 store and compute every f32 value of the model in that type (fp32 accumulation in
// GEMMs, norms and softmax); FP16 is for the GPU only. FP8 (GPU only) is FP16 with the products
// by constant weights as FP8 e4m3 GEMMs, activation scales calibrated at open (docs/GPU.md).
enum class Precision { FP32, BF16, INT8, Auto, FP16, FP8 };
const char* precision_name(Precision p);
Precision parse_precision(const std::string& s);  // "fp32", "bf16", "int8", "auto", "fp16", "fp8"

// Shape buckets (ARCHITECTURE.md, runtime): sizes declared per symbolic input dim. A run whose
// size of a paddable symbol lies at or below a bucket is padded up to the smallest such bucket
// and runs on that bucket's plan (outputs sliced back); other runs get a plan made for their
// exact shape, kept in a bounded LRU (SessionOptions::max_exact_plans).
struct ShapeBuckets {
  enum class Padding {
    Auto,    // paddable when the symbol is the batch dim or appears in a mask input
    Always,  // declared paddable ("seq~=128,512")
    Never,   // only exactly these sizes run on pinned plans ("seq==128,512")
  };
  struct Symbol {
    std::vector<int64_t> sizes;  // ascending, distinct, positive
    Padding padding = Padding::Auto;
  };
  std::map<std::string, Symbol> symbols;
  bool empty() const { return symbols.empty(); }
};
// "batch=1,8,32;seq~=128,512": ';'-separated NAME=SIZES, where NAME~=SIZES declares the symbol
// paddable and NAME==SIZES declares it not paddable. Sizes are sorted; errors name the part.
ShapeBuckets parse_shape_buckets(const std::string& spec);
std::string to_string(const ShapeBuckets& buckets);  // the spec parse_shape_buckets reads

struct SessionOptions {
  OptimizationLevel optimization = OptimizationLevel::All;
  bool check_unsupported_at_load = true;  // fail at open() listing every unsupported op
  Precision precision = Precision::FP32;
  int threads = 0;              // threads per run; 0 means every core
  bool fast_kernels = true;     // false runs the reference kernels only
  bool memory_planning = true;  // place fast kernels' outputs in one planned arena per run
  // Inputs `auto` precision calibrates on; missing ones are random (dynamic dims: the first of
  // an input 2, the others 32; mask inputs all ones). FP8 calibrates its activation scales on
  // them too (missing ones: valid random inputs, first dim 8, the others 32).
  std::map<std::string, Tensor> calibration_inputs;
  double accuracy_budget = 0.999;  // `auto`: minimum cosine similarity of each output to fp32
  // Where the graph runs: "cpu", or "cuda" / "cuda:N" (GPU kernels where the CUDA backend has
  // them, the rest on the CPU with explicit copies; see docs/GPU.md).
  std::string target = "cpu";
  // target cuda: capture each input shape's run once as a CUDA graph and replay it.
  bool cuda_graphs = true;
  // target cuda: time cuBLASLt's candidate algorithms for each GEMM problem at its first run and
  // keep the fastest (false: the heuristic's first choice).
  bool cuda_gemm_tuning = true;
  // Engine files (.kpt, docs/ENGINE_FILE.md): false skips the checksums of the weight sections
  // for trusted fast loads (the header, graph and plans are always checked).
  bool verify_engine = true;
  // An engine built on a machine with other ISA features or another oneDNN is refused unless
  // this lets the kernels repack from the fp32 weights it carries.
  bool repack_engine = false;
  // Called as each long step of open() starts ("import", "optimize", ...), for progress lines.
  std::function<void(const std::string& step)> progress;
  // Shape buckets; their symbols are checked against the model's input symbols at open.
  ShapeBuckets buckets;
  bool warm_buckets = false;  // run every bucket once at open (Session::warm_buckets)
  // Plans made for exact shapes (memory plans, and each kernel's per-shape oneDNN primitives)
  // are kept for this many most recent shapes; bucket plans are pinned and not counted.
  size_t max_exact_plans = 8;
};

// What `Session::save_engine` builds for (see docs/ENGINE_FILE.md).
struct EngineOptions {
  std::string target = "cpu";  // "cpu", "cuda" or "cuda:N"
  std::string buckets;         // the shape-bucket spec given to kpt optimize, recorded
  std::function<void(const std::string& step)> progress;
};

// Where a session's model came from and what loading it took.
struct LoadInfo {
  bool from_engine = false;
  int packed_reused = 0;        // prepacked weights taken from the engine file
  int packed_fresh = 0;         // weights packed at load
  std::string engine_metadata;  // the engine's metadata section (JSON), from_engine only
};

// A tensor in the memory of the session's CUDA device, owned by the caller (I/O binding).
struct DeviceTensor {
  DType dtype = DType::Undefined;
  Dims dims;
  void* data = nullptr;
};

// The memory plan of one shape bucket, as Session::bucket_plans exports it and
// Session::import_bucket_plans takes it back (engine files store these). Node and output
// indices refer to the optimized graph (Session::graph()), which must be the same graph.
struct BucketPlan {
  std::map<std::string, int64_t> sizes;  // every input symbol -> its size in this bucket
  struct Placement {
    size_t node = 0, output = 0;  // node index in the optimized graph, output position
    size_t bytes = 0, offset = 0;
  };
  size_t arena_bytes = 0;
  std::vector<Placement> tensors;
  // Outputs that are views of planned memory by design (node, output).
  std::vector<std::pair<size_t, size_t>> expected_views;
  int in_place = 0;
};

// How runs met the shape buckets since open.
struct BucketStats {
  int64_t bucket_runs = 0;  // sizes equal to a bucket
  int64_t padded_runs = 0;  // padded up to a bucket
  int64_t exact_runs = 0;   // on a plan for the exact shape
};

// What the memory planner did (see ARCHITECTURE.md, runtime): the arena a run needs against
// the bytes of the tensors placed in it, had each its own allocation.
struct MemoryStats {
  size_t arena_bytes = 0;
  size_t planned_tensor_bytes = 0;
  int planned_tensors = 0;
  int in_place = 0;      // outputs written over an input that dies at that node
  int plans = 0;         // input-shape signatures planned
  int pinned_plans = 0;  // of which kept for good (shape buckets)
  int kept_plans = 0;    // plans held now
};

class Session {
 public:
  static Session open(const std::string& path, SessionOptions options = {});
  static Session from_bytes(const std::string& bytes, SessionOptions options = {});
  // Writes this session as an engine file: the optimized graph, its weights (64-byte aligned
  // for mapping), the weights its kernels packed, the precision decisions and metadata. Session
  // ::open of that file maps it and runs without optimizing or packing again.
  void save_engine(const std::string& path, const EngineOptions& options = {}) const;
  LoadInfo load_info() const;
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  const std::vector<IoInfo>& inputs() const;
  const std::vector<IoInfo>& outputs() const;
  // Runs with named inputs; every required input must be present with the declared dtype and a
  // shape compatible with the declared one. Returns outputs in declaration order.
  std::vector<Value> run(const std::map<std::string, Value>& inputs) const;
  std::vector<Tensor> run_tensors(const std::map<std::string, Tensor>& inputs) const;

  // target cuda: inputs already on the device are read in place (no host copy), and outputs
  // named in `device_outputs` are written to the caller's device memory (their entry in the
  // result is empty). A device input may have the model's dtype or the session's device type
  // for it (f16/bf16 for f32 at those precisions). Other inputs come from `inputs`.
  std::vector<Value> run_bound(const std::map<std::string, Value>& inputs,
                               const std::map<std::string, DeviceTensor>& device_inputs,
                               const std::map<std::string, DeviceTensor>& device_outputs) const;
  // target cuda: which nodes run on the GPU and which on the CPU, the copies between them per
  // run, weights on the device and CUDA graph use; "" for target cpu.
  std::string device_report() const;

  const ir::Graph& graph() const;
  // The optimized model: graph, opsets and metadata (what `kpt export` writes out).
  const ir::Model& model() const;
  // Passes that rewrote something at open(), with their rewrite counts, in order.
  std::vector<std::pair<std::string, int>> passes_fired() const;
  // Which optimizer passes fired at open() and how the op histogram changed.
  std::string optimization_report() const;
  // Which nodes run on fast kernels, counted by kernel name ("dnnl.matmul(fp32)" -> 72), and
  // the nodes that stay on reference kernels counted by op ("reference:Gather" -> 3).
  std::map<std::string, int> kernel_histogram() const;
  MemoryStats memory_stats() const;
  // With precision auto: what each layer runs at and why, and the outputs' cosine to fp32.
  std::string precision_report() const;

  // Shape buckets. Runs each bucket (every combination of the declared sizes) once on valid
  // random inputs so its memory plan and kernel primitives exist before the first request;
  // `other_sizes` gives input symbols that have no buckets. Returns the buckets it ran.
  std::vector<std::map<std::string, int64_t>> warm_buckets(
      const std::map<std::string, int64_t>& other_sizes = {}) const;
  // The memory plans of the buckets run so far, and taking them back (checked against the
  // graph: node and output indices, offsets within the arena).
  std::vector<BucketPlan> bucket_plans() const;
  void import_bucket_plans(const std::vector<BucketPlan>& plans) const;
  BucketStats bucket_stats() const;
  // Which symbols are paddable and why, one line per declared symbol.
  std::string buckets_report() const;

  // Where one run's time goes: each top-level node with the kernel that ran it.
  struct NodeTime {
    std::string node, op, kernel;  // kernel: a fast kernel's name or "reference"
    double ms = 0;
  };
  std::vector<Value> run_profiled(const std::map<std::string, Value>& inputs,
                                  std::vector<NodeTime>& times) const;
  // A profiled run's node times summed by op and kernel, heaviest first.
  struct OpTime {
    std::string op, kernel;
    double ms = 0;
    int nodes = 0;
  };
  static std::vector<OpTime> by_op(const std::vector<NodeTime>& times);

 private:
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  // Reads an engine file (src/runtime/engine_session.cpp).
  static std::unique_ptr<Impl> load_engine(const std::string& path, const SessionOptions& options);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kpt
