#!/usr/bin/env bash
# The GPU check in one call, on a machine with an NVIDIA GPU: the GPU test suite (every CUDA
# kernel against the CPU reference kernels on fresh random inputs), the conformance cases the
# CUDA backend claims (when the ONNX conformance folder is there), the kernel benchmark and
# PyTorch's timings of the same shapes, and the model benchmark (BERT-base fp16 and fp8, GPT-2
# prefill, ResNet-50 against PyTorch eager and torch.compile on the same weights); a summary at
# the end.
#
# usage: scripts/gpu-check.sh [BIN_DIR]
#   without BIN_DIR: builds this tree into build-gpu (needs nvcc and the packages of
#     scripts/install-deps.sh), then runs what it built.
#   with BIN_DIR: runs prebuilt programs packed by scripts/gpu-pack.sh. The lent H200 machines
#     have nvcc and PyTorch but not protobuf, oneDNN or GoogleTest, so there the programs are
#     built on a Debian 12 machine and carried (see docs/GPU.md).
# Results (logs, JSON) go to $KPT_GPU_RESULTS, else $OUT, else ./gpu-results.
# KPT_CONFORMANCE: the conformance folder (default ../shared/onnx-conformance beside the tree);
# KPT_GPU_SKIP: words among "tests conformance kernels models" to leave out.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
results=${KPT_GPU_RESULTS:-${OUT:-$root/gpu-results}}
mkdir -p "$results"

if [ -z "$bin" ]; then
  echo "== building into $root/build-gpu"
  if ! { cmake -S "$root" -B "$root/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$root/build-gpu" --target kpt_cli kpt_gpu_tests kpt_gpu_bench kpt_gpu_model_bench; } \
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

skip=" ${KPT_GPU_SKIP:-} "
tests_rc=0 bench_rc=0 torch_rc=0 models_rc=0
export PYTHONUNBUFFERED=1

if [[ $skip != *" tests "* ]]; then
  echo "== GPU test suite"
  "$bin/kpt_gpu_tests" --gtest_color=no >"$results/gpu_tests.log" 2>&1
  tests_rc=$?
  grep -v "^  \|^\[ RUN\|^\[       OK" "$results/gpu_tests.log" | tail -25
fi

conf=${KPT_CONFORMANCE:-$root/../shared/onnx-conformance}
if [[ $skip != *" conformance "* ]] && [ -d "$conf" ]; then
  for p in fp32 fp16; do
    echo "== conformance on the GPU, $p (cases the CUDA backend claims: no CPU fallback)"
    tol=""
    [ "$p" = fp16 ] && tol="--rtol 2e-2 --atol 2e-2"
    # shellcheck disable=SC2086
    "$bin/kpt" conformance "$conf" --target cuda --precision "$p" $tol -j "$(nproc)" \
      --json "$results/conformance_cuda_$p.json" 2>&1 | tail -5
    python3 - "$results/conformance_cuda_$p.json" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))["cases"]
claimed = [c for c in cases if c["status"] != "unsupported"]
failed = [c for c in claimed if c["status"] != "passed"]
print(f"claimed {len(claimed)} of {len(cases)}, passed {len(claimed) - len(failed)}, failed {len(failed)}")
for c in failed:
    print("  FAILED", c["folder"] + "/" + c["name"], c["reason"][:160])
PY
  done
fi

if [[ $skip != *" kernels "* ]]; then
  echo "== kernel benchmark (kpt)"
  "$bin/kpt_gpu_bench" --json "$results/bench_kpt.json" >"$results/bench_kpt.log" 2>&1
  bench_rc=$?
  echo "== kernel benchmark (PyTorch, same shapes)"
  python3 "$root/scripts/gpu_bench_torch.py" --json "$results/bench_torch.json" \
    >"$results/bench_torch.log" 2>&1
  torch_rc=$?
fi

if [[ $skip != *" models "* ]]; then
  echo "== model benchmark (kpt against PyTorch eager and torch.compile, same weights)"
  work=$(mktemp -d)
  model_bench() {  # NAME ARGS...: one gpu_model_bench.py run, its table and JSON kept
    local name=$1
    shift
    python3 "$root/scripts/gpu_model_bench.py" --bench "$bin/kpt_gpu_model_bench" --work "$work" \
      --out "$results/$name" "$@" >"$results/$name.log" 2>&1 || models_rc=1
    sed -n '/^model /,$p' "$results/$name.log"
  }
  model_bench bert --configs 1x128,32x128 --precisions fp16,fp8 --kpt-args "--profile 12"
  # The same batch 32 with cuBLASLt's heuristic first choices: what GEMM tuning gains.
  model_bench bert-untuned --configs 32x128 --precisions fp16,fp8 --kpt-args "--gemm-tuning off"
  model_bench gpt2 --model kpt-gpt --configs 1x512 --kpt-args "--profile 12"
  model_bench resnet50 --model resnet50 --batches 1,32 --compile 1,32,32:cl --kpt-args "--profile 12"
  rm -rf "$work"
fi

echo "== summary"
[ -f "$results/gpu_tests.log" ] &&
  grep -E "^\[  (PASSED|FAILED)  \]|tests? ran|FAILED TEST" "$results/gpu_tests.log" | sort -u
echo "tests exit $tests_rc, kpt bench exit $bench_rc, torch bench exit $torch_rc, models exit $models_rc"
if [ -f "$results/bench_kpt.log" ]; then
  echo "-- kpt"
  sed -n '/^kernel /,$p' "$results/bench_kpt.log"
  echo "-- torch"
  sed -n '/^kernel /,$p' "$results/bench_torch.log"
fi
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ] && [ "$models_rc" -eq 0 ]
