// The GPU-only precisions (fp16, fp8) as seen without a GPU: names, the CPU target's refusal,
// and (in a CUDA build) the plan `kpt optimize --target cuda --precision fp8` explains, which
// needs no device: products by weights whose K and N fit cuBLASLt's FP8 kernels run in FP8,
// the others in f16 with the reason named.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "runtime/device_executor.hpp"
#include "tests/testing/model_builder.hpp"

namespace kpt {
namespace {

TEST(GpuPrecision, NamesRoundTrip) {
  for (Precision p : {Precision::FP32, Precision::BF16, Precision::INT8, Precision::Auto,
                      Precision::FP16, Precision::FP8})
    EXPECT_EQ(parse_precision(precision_name(p)), p) << precision_name(p);
  try {
    parse_precision("fp4");
    FAIL() << "fp4 parsed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp8"), std::string::npos) << e.what();
  }
}

// x [rows, k] times a constant weight [k, n].
std::string matmul_model(int64_t k, int64_t n) {
  testing::ModelBuilder m(17);
  m.input("x", DType::F32, testing::DeclDims{-1, k});
  m.output("y", DType::F32, std::nullopt);
  m.initializer("w", DType::F32, {k, n},
                testing::bytes_of(std::vector<float>(static_cast<size_t>(k * n), 0.5f)));
  m.node("MatMul", {"x", "w"}, {"y"});
  return m.bytes();
}

TEST(GpuPrecision, Fp16AndFp8AreRefusedOnTheCpu) {
  for (Precision p : {Precision::FP16, Precision::FP8}) {
    SessionOptions o;
    o.precision = p;
    try {
      Session::from_bytes(matmul_model(32, 48), o);
      FAIL() << precision_name(p) << " opened on the CPU";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("GPU only"), std::string::npos) << e.what();
    }
  }
}

#if defined(KPT_HAVE_CUDA)
std::string fp8_plan(int64_t k, int64_t n) {
  SessionOptions o;
  o.fast_kernels = false;  // graph passes only, as kpt optimize without an engine
  Session s = Session::from_bytes(matmul_model(k, n), o);
  return runtime::describe_cuda_plan(s.graph(), Precision::FP8);
}

TEST(GpuPrecision, Fp8PlanRunsWeightProductsInFp8WhereCublasLtCan) {
  const std::string fits = fp8_plan(32, 48);
  EXPECT_NE(fits.find("cublasLt.gemm(fp8 e4m3) 1"), std::string::npos) << fits;
  const std::string odd = fp8_plan(10, 48);
  EXPECT_NE(odd.find("cublasLt.gemm(f16, not fp8: K 10, N 48: FP8 needs multiples of 16) 1"),
            std::string::npos)
      << odd;
}
#endif

}  // namespace
}  // namespace kpt
