#include "backends/cpu/shape_plan_cache.hpp"

namespace kpt::cpu {

namespace {
thread_local ShapePlanPolicy current_policy;
}

const ShapePlanPolicy& shape_plan_policy() {
  return current_policy;
}

ShapePlanScope::ShapePlanScope(ShapePlanPolicy policy) : previous_(current_policy) {
  current_policy = policy;
}

ShapePlanScope::~ShapePlanScope() {
  current_policy = previous_;
}

}  // namespace kpt::cpu
