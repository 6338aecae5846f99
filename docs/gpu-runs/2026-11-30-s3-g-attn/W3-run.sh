#!/usr/bin/env bash
# g-attn W3 (< 80 s): the sm_90a flash attention: tile 6 (1 consumer warpgroup, 64-row blocks)
# and the default dispatch (tile 0) through the tests; every kernel vs PyTorch SDPA, same run.
set -u
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
t() { echo "-- $(date +%T) $*"; }
show() {
  grep -E "^  attention .* tile [0-9]:" "$1" | head -n "$2"
  grep -v -E "^  attention|^\[ +(RUN|OK) " "$1" | head -n 40
  grep -E "^\[  (PASSED|FAILED)  \]|tests? ran" "$1"
  echo "cases run: $(grep -c -E " tile [0-9]: rel_l2" "$1")"
}
t "tests tiles 6,0"
KPT_GPU_ATTENTION_TILES=6,0 timeout -k 2 34 bin/kpt_gpu_tests --gtest_color=no \
  --gtest_filter='CudaAttention*' >t60.log 2>&1
echo "rc $?"; show t60.log 30
t "kpt bench 0,2,4,5,6"
timeout -k 2 12 bin/kpt_gpu_bench --attention --tiles 0,2,4,5,6 2>&1 | tail -n 64
t "torch"
PYTHONUNBUFFERED=1 timeout -k 2 18 python3 gpu_bench_torch.py --attention 2>&1 | tail -n 28
t "memcheck tile 6"
KPT_GPU_ATTENTION_TILES=6 timeout -k 2 10 compute-sanitizer --tool memcheck bin/kpt_gpu_tests \
  --gtest_color=no --gtest_filter='CudaAttention.UnequalQueryAndKeyLengths' 2>&1 \
  | grep -v "^  attention" | tail -n 5
t "done"
