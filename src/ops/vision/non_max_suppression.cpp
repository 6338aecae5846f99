// NonMaxSuppression: greedy per (batch, class) selection by descending score, dropping boxes
// whose IoU with a selected box exceeds the threshold.
#include <algorithm>
#include <numeric>

#include "ops/vision/vision_util.hpp"

namespace kpt::ops::vision {
namespace {

struct Box {
  double y1, x1, y2, x2;
};

double iou(const Box& a, const Box& b) {
  const double area_a = (a.y2 - a.y1) * (a.x2 - a.x1);
  const double area_b = (b.y2 - b.y1) * (b.x2 - b.x1);
  if (area_a <= 0 || area_b <= 0) return 0;
  const double ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  const double iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  if (ih <= 0 || iw <= 0) return 0;
  const double inter = ih * iw;
  return inter / (area_a + area_b - inter);
}

void non_max_suppression(KernelContext& ctx) {
  const Tensor& boxes = ctx.input(0);
  const Tensor& scores = ctx.input(1);
  ctx.check(boxes.rank() == 3 && boxes.dim(2) == 4, [&] {
    return "boxes must be [num_batches, spatial_dimension, 4], got " + boxes.describe();
  });
  ctx.check(
      scores.rank() == 3 && scores.dim(0) == boxes.dim(0) && scores.dim(2) == boxes.dim(1), [&] {
        return "scores must be [num_batches, num_classes, spatial_dimension] matching boxes, got " +
               scores.describe();
      });
  const int64_t max_out =
      ctx.has_input(2) && ctx.input(2).numel() > 0 ? ctx.input(2).get_i64(0) : 0;
  const double iou_th = ctx.has_input(3) && ctx.input(3).numel() > 0 ? ctx.input(3).get_f64(0) : 0;
  const bool has_score_th = ctx.has_input(4) && ctx.input(4).numel() > 0;
  const double score_th = has_score_th ? ctx.input(4).get_f64(0) : 0;
  const int64_t center = ctx.attr_int("center_point_box", 0);
  ctx.check(center == 0 || center == 1, "center_point_box must be 0 or 1");
  const int64_t nb = boxes.dim(0), nbox = boxes.dim(1), nc = scores.dim(1);
  const std::vector<double> bv = to_f64(boxes), sv = to_f64(scores);
  std::vector<int64_t> selected;
  for (int64_t b = 0; b < nb; ++b) {
    std::vector<Box> bx(static_cast<size_t>(nbox));
    for (int64_t i = 0; i < nbox; ++i) {
      const double* p = bv.data() + (b * nbox + i) * 4;
      Box& o = bx[static_cast<size_t>(i)];
      if (center == 1) {
        o = {p[1] - p[3] / 2, p[0] - p[2] / 2, p[1] + p[3] / 2, p[0] + p[2] / 2};
      } else {
        o = {std::min(p[0], p[2]), std::min(p[1], p[3]), std::max(p[0], p[2]),
             std::max(p[1], p[3])};
      }
    }
    for (int64_t c = 0; c < nc; ++c) {
      const double* s = sv.data() + (b * nc + c) * nbox;
      std::vector<int64_t> cand;
      for (int64_t i = 0; i < nbox; ++i)
        if (!has_score_th || s[i] > score_th) cand.push_back(i);
      std::stable_sort(cand.begin(), cand.end(), [&](int64_t a, int64_t d) { return s[a] > s[d]; });
      std::vector<int64_t> keep;
      for (int64_t i : cand) {
        if (static_cast<int64_t>(keep.size()) >= max_out) break;
        bool ok = true;
        for (int64_t k : keep)
          if (iou(bx[static_cast<size_t>(i)], bx[static_cast<size_t>(k)]) > iou_th) {
            ok = false;
            break;
          }
        if (ok) keep.push_back(i);
      }
      for (int64_t k : keep) selected.insert(selected.end(), {b, c, k});
    }
  }
  Tensor out(DType::I64, {static_cast<int64_t>(selected.size() / 3), 3});
  std::copy(selected.begin(), selected.end(), out.data<int64_t>());
  ctx.set_output(0, out);
}

}  // namespace

KPT_REGISTER_OP("", "NonMaxSuppression", 1, non_max_suppression);

}  // namespace kpt::ops::vision
