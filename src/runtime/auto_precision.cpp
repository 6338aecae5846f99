#include "runtime/auto_precision.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "core/compare.hpp"
#include "kpt/error.hpp"
#include "ops/run_node.hpp"
#include "runtime/executor.hpp"

namespace kpt::runtime {

namespace {

struct Candidate {
  Precision precision;
  std::unique_ptr<ops::Kernel> kernel;
  double cosine = 0;
  double us = 0;
};

struct Layer {
  size_t node = 0;
  std::vector<Value> inputs;  // captured on the fp32 run
  Tensor fp32_output;
  double fp32_us = 0;
  std::vector<Candidate> candidates;  // lower precisions, best first once ranked
  int chosen = -1;                    // index into candidates; -1 = fp32
  std::string reason;
};

double time_kernel(const ir::Node& node, const std::vector<Value>& inputs, const ops::Kernel* k,
                   int repeats, Tensor* output) {
  std::vector<const Value*> in;
  for (const auto& v : inputs) in.push_back(v.is_none() && !v.optional ? nullptr : &v);
  double best = 1e300;
  for (int r = 0; r < repeats + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Value> out = ops::run_node(node, in, nullptr, k);
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::min(best, us);  // the first run warms caches and primitives
    if (output && r == 0 && !out.empty() && out[0].is_tensor()) *output = out[0].tensor;
  }
  return best;
}

std::vector<double> output_cosines(const std::vector<Value>& got, const std::vector<Value>& want) {
  std::vector<double> c;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (got[i].is_tensor() && want[i].is_tensor() && is_float(want[i].tensor.dtype())) {
      c.push_back(compare_outputs(got[i].tensor, want[i].tensor, 1e-3, 1e-4).cosine);
    } else {
      c.push_back(1.0);
    }
  }
  return c;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

AutoPrecisionResult choose_precisions(const ir::Graph& g, KernelPlan& plan,
                                      const std::vector<Value>& calibration,
                                      const AutoPrecisionOptions& options,
                                      cpu::PackedWeights* packed) {
  AutoPrecisionResult result;
  result.options = options;
  // Layers that have a lower-precision kernel.
  std::map<size_t, Layer> layers;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    if (!plan.by_node[k]) continue;
    Layer layer;
    layer.node = k;
    for (Precision p : {Precision::INT8, Precision::BF16}) {
      auto kernel = prepare_node(g, k, p, packed);
      if (kernel && kernel->name() != plan.by_node[k]->name()) {
        layer.candidates.push_back(Candidate{p, std::move(kernel)});
      }
    }
    if (!layer.candidates.empty()) layers.emplace(k, std::move(layer));
  }
  if (layers.empty()) return result;

  // The fp32 run: model outputs to compare with, and each layer's inputs.
  const NodeObserver capture = [&](size_t k, const std::vector<const Value*>& in,
                                   const std::vector<Value>&) {
    auto it = layers.find(k);
    if (it == layers.end()) return;
    for (const Value* v : in) it->second.inputs.push_back(v ? *v : Value{});
  };
  const std::vector<Value> reference =
      run_graph(g, calibration, nullptr, &plan.by_node, nullptr, &capture);

  for (auto& [k, layer] : layers) {
    const ir::Node& node = g.nodes[k];
    layer.fp32_us = time_kernel(node, layer.inputs, plan.by_node[k], options.timing_repeats,
                                &layer.fp32_output);
    for (auto& c : layer.candidates) {
      Tensor out;
      c.us = time_kernel(node, layer.inputs, c.kernel.get(), options.timing_repeats, &out);
      c.cosine = out.defined() && layer.fp32_output.defined()
                     ? compare_outputs(out, layer.fp32_output, 1e-3, 1e-4).cosine
                     : 0.0;
    }
    // Fastest first; choose the fastest that is accurate enough and worth it.
    std::sort(layer.candidates.begin(), layer.candidates.end(),
              [](const Candidate& a, const Candidate& b) { return a.us < b.us; });
    layer.reason = "fp32: no lower precision kept cosine >= " + fmt("%.4f", options.layer_cosine) +
                   " and ran " + fmt("%.2f", options.min_speedup) + "x faster";
    for (size_t i = 0; i < layer.candidates.size(); ++i) {
      const Candidate& c = layer.candidates[i];
      if (c.cosine >= options.layer_cosine && layer.fp32_us >= options.min_speedup * c.us) {
        layer.chosen = static_cast<int>(i);
        layer.reason = std::string(precision_name(c.precision)) + ": cosine " +
                       fmt("%.6f", c.cosine) + ", " + fmt("%.2f", layer.fp32_us / c.us) +
                       "x faster than fp32";
        break;
      }
    }
  }

  // Whole-model check: while an output misses the budget, send the least accurate lowered layer
  // to its next more accurate choice.
  auto install = [&]() {
    std::vector<const ops::Kernel*> by_node = plan.by_node;
    for (auto& [k, layer] : layers) {
      if (layer.chosen >= 0)
        by_node[k] = layer.candidates[static_cast<size_t>(layer.chosen)].kernel.get();
    }
    return by_node;
  };
  std::vector<double> cosines;
  for (;;) {
    const std::vector<const ops::Kernel*> by_node = install();
    cosines = output_cosines(run_graph(g, calibration, nullptr, &by_node), reference);
    const double worst = cosines.empty() ? 1.0 : *std::min_element(cosines.begin(), cosines.end());
    if (worst >= options.output_cosine) break;
    Layer* victim = nullptr;
    for (auto& [k, layer] : layers) {
      if (layer.chosen < 0) continue;
      const double c = layer.candidates[static_cast<size_t>(layer.chosen)].cosine;
      if (!victim || c < victim->candidates[static_cast<size_t>(victim->chosen)].cosine) {
        victim = &layer;
      }
    }
    if (!victim) break;  // everything is fp32 already
    // Next choice: a more accurate accepted candidate, else fp32.
    const double current = victim->candidates[static_cast<size_t>(victim->chosen)].cosine;
    int next = -1;
    for (size_t i = 0; i < victim->candidates.size(); ++i) {
      const Candidate& c = victim->candidates[i];
      if (c.cosine > current && c.cosine >= options.layer_cosine &&
          victim->fp32_us >= options.min_speedup * c.us) {
        next = static_cast<int>(i);
        break;
      }
    }
    victim->chosen = next;
    victim->reason =
        (next >= 0
             ? std::string(precision_name(victim->candidates[static_cast<size_t>(next)].precision))
             : std::string("fp32")) +
        ": moved up because a model output's cosine " + fmt("%.5f", worst) + " missed the budget " +
        fmt("%.4f", options.output_cosine);
    result.reverted++;
  }

  // Install the choices in the plan and report them.
  for (auto& [k, layer] : layers) {
    LayerChoice choice;
    choice.node = g.nodes[k].name.empty() ? g.nodes[k].outputs[0] : g.nodes[k].name;
    choice.op = g.nodes[k].op_type;
    choice.fp32_us = layer.fp32_us;
    choice.reason = layer.reason;
    if (layer.chosen >= 0) {
      Candidate& c = layer.candidates[static_cast<size_t>(layer.chosen)];
      choice.precision = c.precision;
      choice.cosine = c.cosine;
      choice.chosen_us = c.us;
      plan.by_node[k] = c.kernel.get();
      plan.precision_by_node[k] = c.precision;
      plan.owned.push_back(std::move(c.kernel));
    } else {
      choice.chosen_us = layer.fp32_us;
    }
    choice.kernel = plan.by_node[k]->name();
    result.layers.push_back(std::move(choice));
  }
  count_kernels(g, plan);
  for (size_t i = 0; i < cosines.size() && i < g.outputs.size(); ++i) {
    result.output_cosine.emplace_back(g.outputs[i].name, cosines[i]);
  }
  return result;
}

std::string AutoPrecisionResult::explain() const {
  std::map<std::string, int> counts;
  double fp32_total = 0, chosen_total = 0;
  for (const auto& l : layers) {
    counts[precision_name(l.precision)]++;
    fp32_total += l.fp32_us;
    chosen_total += l.chosen_us;
  }
  std::string s = "auto precision: budget cosine >= " + fmt("%.4f", options.output_cosine) +
                  " per model output (layers: cosine >= " + fmt("%.4f", options.layer_cosine) +
                  ")\n  layers:";
  for (const auto& [p, n] : counts) s += " " + p + " " + std::to_string(n);
  if (chosen_total > 0) {
    s += "; layer time " + fmt("%.0f", fp32_total) + " us at fp32 -> " + fmt("%.0f", chosen_total) +
         " us (" + fmt("%.2f", fp32_total / chosen_total) + "x)";
  }
  s += "; moved up by the whole-model check: " + std::to_string(reverted) + "\n";
  for (const auto& [name, c] : output_cosine) {
    s += "  output " + name + ": cosine " + fmt("%.6f", c) + "\n";
  }
  for (const auto& l : layers) {
    s += "  " + l.node + " (" + l.op + "): " + l.kernel + " - " + l.reason + "\n";
  }
  return s;
}

}  // namespace kpt::runtime
