#pragma once
// FusedConv's computation, shared with the blocked-layout convolution (blocked_conv.cpp).
#include "ops/registry.hpp"

namespace kpt::ops::vision {

// activation(Conv(x, w, b) + z) over N x C x spatial tensors, with the node's Conv attributes
// and its `activation` / `activation_params` (empty activation: none). b and z may be null.
Tensor fused_conv_nchw(const KernelContext& ctx, const Tensor& x, const Tensor& w, const Tensor* b,
                       const Tensor* z);

}  // namespace kpt::ops::vision
