#pragma once
// What every oneDNN-backed kernel shares: the one CPU engine, a stream per calling thread,
// per-thread scratch memory, and the mapping of our activation names to oneDNN algorithms.
#include <cstddef>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <string>

#include "kpt/tensor.hpp"

namespace kpt::cpu::dnnl_util {

dnnl::engine& engine();
// CPU streams execute synchronously on the calling thread's OpenMP team; one per thread keeps
// concurrent session runs from sharing one.
dnnl::stream& stream();

// Scratch bytes of the calling thread, 64-byte aligned, grown on demand and reused by every
// later call: large activations converted to bf16/u8 and oneDNN's scratchpad would otherwise
// pay a fresh (page-faulting) allocation per run. `slot` separates buffers used at once.
enum class Scratch { Scratchpad = 0, Source = 1, Vector = 2, Destination = 3, Count = 4 };
void* scratch(Scratch slot, size_t bytes);

dnnl::memory::dims to_dims(const Dims& d);

// A fused activation as a oneDNN eltwise post-op.
struct Eltwise {
  dnnl::algorithm alg;
  float alpha = 0.f;
  float beta = 0.f;
};
// nullopt for "" (no activation); fails for names it does not know.
std::optional<Eltwise> activation(const std::string& name);
// Whether `name` is an activation the fused ops may carry ("" included).
bool known_activation(const std::string& name);

}  // namespace kpt::cpu::dnnl_util
