#pragma once
// Where each node of a graph runs on target cuda, decided once at session load:
//  - gpu: a GPU kernel adapter (gpu_kernel.hpp) took the node;
//  - host: every input is host-known (an initializer, or computed from initializers and
//    shapes, e.g. Shape -> Gather -> Concat): the CPU computes it once per input shape and no
//    copy is made unless a GPU node reads the result (then it is uploaded once per shape);
//  - cpu: a fallback, the reference kernel on the CPU, with its inputs downloaded and outputs
//    uploaded as the plan lists.
// The plan also lists every host<->device copy a run makes, for the report.
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/gpu_kernel.hpp"
#include "ir/graph.hpp"

namespace kpt::cuda {

enum class Placement { Gpu, Host, Cpu };

struct PlanValue {
  std::string name;
  const ir::Type* type = nullptr;  // inferred, nullptr when unknown
  const Tensor* initializer = nullptr;
  bool host_known = false;   // computed from initializers and shapes alone
  bool shape_known = false;  // dims fixed by the input signature (not by data)
  bool on_device = false;    // some GPU node reads it on the device
  int last_use = -1;         // index of the last node reading it
  bool graph_output = false;
  DType logical() const;  // the model's element type (Undefined when unknown)
};

struct PlanNode {
  Placement where = Placement::Cpu;
  std::unique_ptr<GpuKernel> kernel;
  std::vector<int> in, out;  // value ids, -1 for an omitted optional
};

struct PlannedCopy {
  int value = -1;
  bool to_device = true;
  bool per_shape = false;  // once per input shape (host-known values), not per run
  std::string why;         // "graph input", "CPU fallback Foo", "graph output"
};

struct CudaPlan {
  std::vector<PlanValue> values;
  std::vector<PlanNode> nodes;
  std::vector<int> inputs, outputs;  // value ids of graph inputs and outputs
  std::vector<PlannedCopy> copies;
  std::string no_graph_reason;
  std::vector<std::unique_ptr<Tensor>> owned_tensors;  // weights the planner made (stacked ones)
  std::vector<std::unique_ptr<ir::Type>>
      owned_types;  // of initializers the graph has no type for  // why a CUDA graph cannot hold
                    // the whole run ("" if it can)

  int id(const std::string& name) const;  // -1 for ""
  std::string report(const ir::Graph& g) const;
};

// Plans `g` (types inferred): `float_dtype` is the device type of f32 values; `fp8`: products by
// constant weights as FP8 GEMMs (Precision::FP8, fp8_product.hpp).
CudaPlan make_cuda_plan(const ir::Graph& g, DType float_dtype, bool fp8 = false);

}  // namespace kpt::cuda
