// Scan: runs the body once per slice of the scan inputs, threading state values through and
// stacking per-iteration outputs. Opset 8 has a leading batch axis and optional sequence_lens;
// opset 9+ has per-input/output axes and directions.
#include <algorithm>

#include "ops/control/subgraph_util.hpp"
#include "ops/control/tensor_pieces.hpp"
#include "ops/op_util.hpp"
#include "ops/registry.hpp"

namespace kpt::ops {
namespace {

struct ScanSpec {
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

// One scan over `steps` iterations; scan inputs are cut along in_axes (already normalized).
// Returns final states followed by stacked scan outputs.
std::vector<Value> run_scan(const KernelContext& ctx, const ir::Graph& body,
                            std::vector<Value> states, const std::vector<Tensor>& scan_in,
                            const ScanSpec& spec, int64_t steps) {
  const size_t n_state = states.size();
  const size_t m = scan_in.size();
  ctx.check(body.inputs.size() == n_state + m, "body takes " + std::to_string(body.inputs.size()) +
                                                   " inputs, expected " +
                                                   std::to_string(n_state + m));
  ctx.check(body.outputs.size() >= n_state, "body has fewer outputs than state variables");
  const size_t k_out = body.outputs.size() - n_state;
  std::vector<std::vector<Tensor>> scans(k_out);
  for (int64_t t = 0; t < steps; ++t) {
    std::vector<Value> in = states;
    for (size_t j = 0; j < m; ++j) {
      const int64_t idx = spec.in_dirs[j] ? steps - 1 - t : t;
      in.push_back(Value::of(
          control::slice_axis(scan_in[j], static_cast<size_t>(spec.in_axes[j]), idx, 1, false)));
    }
    std::vector<Value> out = ctx.run_subgraph(body, in);
    for (size_t k = 0; k < n_state; ++k) states[k] = std::move(out[k]);
    for (size_t k = 0; k < k_out; ++k) {
      if (!out[n_state + k].is_tensor())
        ctx.fail("scan output " + std::to_string(k) + " must be a tensor");
      scans[k].push_back(out[n_state + k].tensor);
    }
  }
  std::vector<Value> result = std::move(states);
  for (size_t k = 0; k < k_out; ++k) {
    auto& parts = scans[k];
    if (parts.empty()) {
      result.push_back(Value::of(control::empty_stacked(body.outputs[n_state + k])));
      continue;
    }
    if (spec.out_dirs[k]) std::reverse(parts.begin(), parts.end());
    const int64_t axis =
        normalize_axis(spec.out_axes[k], static_cast<int64_t>(parts[0].rank()) + 1);
    result.push_back(Value::of(control::stack_axis(parts, static_cast<size_t>(axis))));
  }
  return result;
}

std::vector<int64_t> sized_attr(const KernelContext& ctx, const std::string& name, size_t n) {
  std::vector<int64_t> v = ctx.attr_ints(name, std::vector<int64_t>(n, 0));
  ctx.check(v.size() == n, "attribute '" + name + "' has " + std::to_string(v.size()) +
                               " entries, expected " + std::to_string(n));
  return v;
}

void scan9(KernelContext& ctx, const ir::Graph& body, int64_t m) {
  const int64_t total = static_cast<int64_t>(ctx.num_inputs());
  ctx.check(m >= 1 && m <= total, "num_scan_inputs " + std::to_string(m) + " is out of range");
  const size_t n_state = static_cast<size_t>(total - m);
  ScanSpec spec;
  spec.in_axes = sized_attr(ctx, "scan_input_axes", static_cast<size_t>(m));
  spec.in_dirs = sized_attr(ctx, "scan_input_directions", static_cast<size_t>(m));
  const size_t k_out = body.outputs.size() >= n_state ? body.outputs.size() - n_state : 0;
  spec.out_axes = sized_attr(ctx, "scan_output_axes", k_out);
  spec.out_dirs = sized_attr(ctx, "scan_output_directions", k_out);
  std::vector<Value> states;
  for (size_t i = 0; i < n_state; ++i) states.push_back(ctx.value(i));
  std::vector<Tensor> scan_in;
  int64_t steps = -1;
  for (int64_t j = 0; j < m; ++j) {
    const Tensor& x = ctx.input(n_state + static_cast<size_t>(j));
    spec.in_axes[j] = normalize_axis(spec.in_axes[j], static_cast<int64_t>(x.rank()));
    const int64_t len = x.dims()[static_cast<size_t>(spec.in_axes[j])];
    ctx.check(steps < 0 || steps == len, "scan inputs have different lengths along their axes");
    steps = len;
    scan_in.push_back(x);
  }
  std::vector<Value> out = run_scan(ctx, body, std::move(states), scan_in, spec, steps);
  for (size_t i = 0; i < out.size() && i < ctx.num_outputs(); ++i) {
    ctx.set_output_value(i, std::move(out[i]));
  }
}

void scan8(KernelContext& ctx, const ir::Graph& body, int64_t m) {
  const int64_t total = static_cast<int64_t>(ctx.num_inputs()) - 1;
  ctx.check(m >= 1 && m <= total, "num_scan_inputs " + std::to_string(m) + " is out of range");
  const size_t n_state = static_cast<size_t>(total - m);
  ScanSpec spec;
  spec.in_dirs = sized_attr(ctx, "directions", static_cast<size_t>(m));
  spec.in_axes.assign(static_cast<size_t>(m), 0);
  const size_t k_out = body.outputs.size() >= n_state ? body.outputs.size() - n_state : 0;
  spec.out_axes.assign(k_out, 0);
  spec.out_dirs.assign(k_out, 0);

  std::vector<Tensor> states, scan_in;
  for (size_t i = 0; i < n_state; ++i) states.push_back(ctx.input(1 + i));
  for (int64_t j = 0; j < m; ++j)
    scan_in.push_back(ctx.input(1 + n_state + static_cast<size_t>(j)));
  const Tensor& ref = !scan_in.empty() ? scan_in[0] : states[0];
  ctx.check(ref.rank() >= 2,
            [&] { return "scan inputs need [batch, sequence, ...] dims, got " + ref.describe(); });
  const int64_t batch = ref.dims()[0];
  const int64_t max_len = ref.dims()[1];
  for (const auto& x : scan_in)
    ctx.check(x.rank() >= 2 && x.dims()[0] == batch && x.dims()[1] == max_len,
              [&] { return "scan inputs disagree on [batch, sequence] dims: " + x.describe(); });
  for (const auto& s : states)
    ctx.check(s.rank() >= 1 && s.dims()[0] == batch,
              "state inputs must start with the batch dim " + std::to_string(batch));
  std::vector<int64_t> lens(static_cast<size_t>(batch), max_len);
  if (ctx.has_input(0)) {
    lens = ctx.input(0).to_i64_vector();
    ctx.check(static_cast<int64_t>(lens.size()) == batch, "sequence_lens must have batch entries");
    for (auto l : lens)
      ctx.check(l >= 0 && l <= max_len, "sequence length " + std::to_string(l) +
                                            " is outside [0, " + std::to_string(max_len) + "]");
  }
  std::vector<std::vector<Tensor>> per_output(n_state + k_out);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Value> st;
    for (const auto& s : states) st.push_back(Value::of(control::slice_axis(s, 0, b, 1, false)));
    std::vector<Tensor> xs;
    for (const auto& x : scan_in) {
      Tensor xb = control::slice_axis(x, 0, b, 1, false);
      xs.push_back(control::slice_axis(xb, 0, 0, lens[static_cast<size_t>(b)]));
    }
    std::vector<Value> out =
        run_scan(ctx, body, std::move(st), xs, spec, lens[static_cast<size_t>(b)]);
    for (size_t k = 0; k < out.size(); ++k) {
      if (!out[k].is_tensor()) ctx.fail("scan outputs must be tensors");
      Tensor t = out[k].tensor;
      if (k >= n_state && t.dims()[0] < max_len) {
        Dims d = t.dims();
        d[0] = max_len;
        Tensor padded(t.dtype(), d);
        control::copy_elements(t, 0, padded, 0, t.numel());
        t = padded;
      }
      per_output[k].push_back(t);
    }
  }
  for (size_t k = 0; k < per_output.size(); ++k) {
    if (per_output[k].empty()) continue;
    ctx.set_output(k, control::stack_axis(per_output[k], 0));
  }
}

void scan_kernel(KernelContext& ctx) {
  const ir::Graph* body = ctx.node().attr_graph("body");
  if (!body) ctx.fail("missing graph attribute 'body'");
  const int64_t m = ctx.attr_int("num_scan_inputs", -1);
  ctx.check(m >= 1, "attribute num_scan_inputs is required and must be positive");
  if (ctx.opset() < 9) {
    scan8(ctx, *body, m);
  } else {
    scan9(ctx, *body, m);
  }
}

}  // namespace

KPT_REGISTER_OP("", "Scan", 1, scan_kernel);

}  // namespace kpt::ops
