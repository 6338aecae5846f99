#pragma once
// `auto` precision: per layer, the fastest kernel (fp32, bf16, int8) whose output stays close
// to fp32 on calibration inputs, then a whole-model check against the accuracy budget that
// sends the least accurate layers back up until the model's outputs are within it.
#include <string>
#include <vector>

#include "ir/graph.hpp"
#include "kpt/session.hpp"
#include "runtime/kernel_plan.hpp"

namespace kpt::runtime {

struct AutoPrecisionOptions {
  // Every model output must keep at least this cosine similarity with the fp32 output.
  double output_cosine = 0.999;
  // A layer is lowered only when its own output keeps at least this cosine similarity.
  double layer_cosine = 0.9999;
  // A lower precision must be at least this much faster than fp32 on the layer to be chosen.
  double min_speedup = 1.05;
  int timing_repeats = 3;
};

struct LayerChoice {
  std::string node;
  std::string op;
  Precision precision = Precision::FP32;
  std::string kernel;
  double cosine = 1;   // of the chosen kernel's output against fp32's
  double fp32_us = 0;  // time of the fp32 kernel on the calibration inputs
  double chosen_us = 0;
  std::string reason;
};

struct AutoPrecisionResult {
  AutoPrecisionOptions options;
  std::vector<LayerChoice> layers;                            // every layer that had a choice
  std::vector<std::pair<std::string, double>> output_cosine;  // per model output, final plan
  int reverted = 0;  // layers sent back up by the whole-model check
  std::string explain() const;
};

// Lowers layers of `plan` (prepared at fp32) in place. `calibration` are positional graph
// inputs (graph.inputs order).
// Candidates pack through `packed` (the losers' buffers are for the caller to drop).
AutoPrecisionResult choose_precisions(const ir::Graph& g, KernelPlan& plan,
                                      const std::vector<Value>& calibration,
                                      const AutoPrecisionOptions& options,
                                      cpu::PackedWeights* packed = nullptr);

}  // namespace kpt::runtime
