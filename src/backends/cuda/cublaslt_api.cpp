#include "backends/cuda/cublaslt_api.hpp"

#include <dlfcn.h>

#include "kpt/error.hpp"

namespace kpt::cuda {

namespace {

template <typename Fn>
bool resolve(void* lib, const char* name, Fn& fn, std::string& problem) {
  fn = reinterpret_cast<Fn>(dlsym(lib, name));
  if (!fn && problem.empty()) problem = std::string("libcublasLt lacks ") + name;
  return fn != nullptr;
}

CublasLtLoad open_library() {
  CublasLtLoad r;
  static CublasLtApi api;
  // The soname of the cuBLAS major version this was built against first, then the plain name
  // (a development install).
  const std::string versioned = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* lib = nullptr;
  for (const std::string& name : {versioned, std::string("libcublasLt.so")}) {
    lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      r.library = name;
      break;
    }
  }
  if (!lib) {
    r.problem = "cuBLASLt not found (" + versioned + " cannot be loaded: " + dlerror() + ")";
    return r;
  }
  std::string problem;
  resolve(lib, "cublasLtCreate", api.create, problem);
  resolve(lib, "cublasLtDestroy", api.destroy, problem);
  resolve(lib, "cublasLtGetVersion", api.get_version, problem);
  resolve(lib, "cublasLtMatmulDescCreate", api.desc_create, problem);
  resolve(lib, "cublasLtMatmulDescDestroy", api.desc_destroy, problem);
  resolve(lib, "cublasLtMatmulDescSetAttribute", api.desc_set, problem);
  resolve(lib, "cublasLtMatrixLayoutCreate", api.layout_create, problem);
  resolve(lib, "cublasLtMatrixLayoutDestroy", api.layout_destroy, problem);
  resolve(lib, "cublasLtMatrixLayoutSetAttribute", api.layout_set, problem);
  resolve(lib, "cublasLtMatmulPreferenceCreate", api.pref_create, problem);
  resolve(lib, "cublasLtMatmulPreferenceDestroy", api.pref_destroy, problem);
  resolve(lib, "cublasLtMatmulPreferenceSetAttribute", api.pref_set, problem);
  resolve(lib, "cublasLtMatmulAlgoGetHeuristic", api.heuristic, problem);
  resolve(lib, "cublasLtMatmul", api.matmul, problem);
  if (!problem.empty()) {
    r.problem = problem;
    return r;  // the handle stays open: harmless, and dlclose could run static destructors
  }
  r.api = &api;
  return r;
}

}  // namespace

const CublasLtLoad& cublaslt_load() {
  static const CublasLtLoad load = open_library();
  return load;
}

const CublasLtApi& cublaslt() {
  const CublasLtLoad& l = cublaslt_load();
  if (!l.api) throw Error("the CUDA backend cannot run GEMMs: " + l.problem);
  return *l.api;
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuBLASLt error ") + std::to_string(static_cast<int>(status)) + " in " +
                what);
}

}  // namespace kpt::cuda
