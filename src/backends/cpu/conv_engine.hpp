#pragma once
// The oneDNN CPU engine and per-thread stream the convolution and pooling kernels run on.
// One accessor each, so that a backend-wide oneDNN context can replace them in one place.
#include <oneapi/dnnl/dnnl.hpp>

namespace kpt::cpu {

dnnl::engine& conv_engine();
// A stream for the calling thread (streams are not shared between threads).
dnnl::stream& conv_stream();

// Scratch memory of the calling thread that persists between runs, so that per-run layout
// buffers neither allocate nor page-fault. Slot k is one buffer; its contents do not survive
// the next call with the same slot on this thread.
void* thread_scratch(int slot, size_t bytes);
constexpr int kScratchSrc = 0, kScratchDst = 1, kScratchPad = 2;

}  // namespace kpt::cpu
