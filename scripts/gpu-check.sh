#!/usr/bin/env bash
# The GPU check in one call, on a machine with an NVIDIA GPU: the GPU test suite (every CUDA
# kernel against the CPU reference kernels on fresh random inputs), the kernel benchmark, and
# PyTorch's timings of the same shapes in the same run; a summary at the end.
#
# usage: scripts/gpu-check.sh [BIN_DIR]
#   without BIN_DIR: builds this tree into build-gpu (needs nvcc and the packages of
#     scripts/install-deps.sh), then runs what it built.
#   with BIN_DIR: runs prebuilt programs packed by scripts/gpu-pack.sh. The lent H200 machines
#     have nvcc and PyTorch but not protobuf, oneDNN or GoogleTest, so there the programs are
#     built on a Debian 12 machine and carried (see docs/GPU.md).
# Results (logs, JSON) go to $KPT_GPU_RESULTS, else $OUT, else ./gpu-results.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
results=${KPT_GPU_RESULTS:-${OUT:-$root/gpu-results}}
mkdir -p "$results"

if [ -z "$bin" ]; then
  echo "== building into $root/build-gpu"
  if ! { cmake -S "$root" -B "$root/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$root/build-gpu" --target kpt_cli kpt_gpu_tests kpt_gpu_bench; } \
    >"$results/build.log" 2>&1; then
    tail -30 "$results/build.log"
    echo "gpu-check: build failed (see $results/build.log); on a machine without the build"
    echo "dependencies, pass a folder made by scripts/gpu-pack.sh"
    exit 1
  fi
  bin=$root/build-gpu
fi
bin=$(cd "$bin" && pwd)
export LD_LIBRARY_PATH="$bin/lib:/usr/local/cuda/targets/x86_64-linux/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
"$bin/kpt" doctor | sed -n "/^gpu/,/^ops/p" | tee "$results/doctor.txt"

echo "== GPU test suite"
"$bin/kpt_gpu_tests" --gtest_color=no 2>&1 | tee "$results/gpu_tests.log"
tests_rc=${PIPESTATUS[0]}

echo "== kernel benchmark (kpt)"
"$bin/kpt_gpu_bench" --json "$results/bench_kpt.json" 2>&1 | tee "$results/bench_kpt.log"
bench_rc=${PIPESTATUS[0]}

echo "== kernel benchmark (PyTorch, same shapes)"
PYTHONUNBUFFERED=1 python3 "$root/scripts/gpu_bench_torch.py" --json "$results/bench_torch.json" \
  2>&1 | tee "$results/bench_torch.log"
torch_rc=${PIPESTATUS[0]}

echo "== summary"
grep -E "^\[  (PASSED|FAILED)  \]|tests? ran|FAILED TEST" "$results/gpu_tests.log" | sort -u
echo "tests exit $tests_rc, kpt bench exit $bench_rc, torch bench exit $torch_rc"
echo "-- kpt"
sed -n '/^kernel /,$p' "$results/bench_kpt.log"
echo "-- torch"
sed -n '/^kernel /,$p' "$results/bench_torch.log"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
