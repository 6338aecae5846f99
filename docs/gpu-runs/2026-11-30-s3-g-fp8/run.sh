set -u
export PYTHONUNBUFFERED=1
timeout 20 bin/kpt_gpu_tests --gtest_filter='CudaFp8.*:CudaNorm.E4m3*:GpuExecutor.*Fp8*' > tests.log 2>&1; echo "kpt_gpu_tests rc=$?"
grep -v '^\[ RUN\|^\[       OK' tests.log
timeout 55 python3 fp8_bench.py fp16,fp8 32x128,1x128 30 2>&1 | grep -v -i warning | grep -v "torch.onnx.export"
