#pragma once
// cuBLASLt, opened at run time (dlopen of libcublasLt.so.13) rather than linked: a kpt binary
// built with the CUDA backend then still starts, and runs CPU models, on a machine without
// cuBLAS; only GPU GEMMs need it. The function types come from cublasLt.h, so a signature
// change there breaks the build instead of the call.
#include <cublasLt.h>

#include <string>

namespace kpt::cuda {

struct CublasLtApi {
  decltype(&::cublasLtCreate) create = nullptr;
  decltype(&::cublasLtDestroy) destroy = nullptr;
  decltype(&::cublasLtGetVersion) get_version = nullptr;
  decltype(&::cublasLtMatmulDescCreate) desc_create = nullptr;
  decltype(&::cublasLtMatmulDescDestroy) desc_destroy = nullptr;
  decltype(&::cublasLtMatmulDescSetAttribute) desc_set = nullptr;
  decltype(&::cublasLtMatrixLayoutCreate) layout_create = nullptr;
  decltype(&::cublasLtMatrixLayoutDestroy) layout_destroy = nullptr;
  decltype(&::cublasLtMatrixLayoutSetAttribute) layout_set = nullptr;
  decltype(&::cublasLtMatmulPreferenceCreate) pref_create = nullptr;
  decltype(&::cublasLtMatmulPreferenceDestroy) pref_destroy = nullptr;
  decltype(&::cublasLtMatmulPreferenceSetAttribute) pref_set = nullptr;
  decltype(&::cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
  decltype(&::cublasLtMatmul) matmul = nullptr;
};

struct CublasLtLoad {
  const CublasLtApi* api = nullptr;  // nullptr when the library could not be opened
  std::string problem;
  std::string library;  // the file name that was opened
};

// Opens the library once per process; never throws.
const CublasLtLoad& cublaslt_load();
// The API, or a kpt::Error naming why it is missing.
const CublasLtApi& cublaslt();

// Throws kpt::Error naming the call when `status` is not success.
void check_cublas(cublasStatus_t status, const char* what);

}  // namespace kpt::cuda
