#!/usr/bin/env bash
# g-attn W3 (< 80 s): sm_90a flash attention, persistent launches (tiles 7, 8) and pingpong
# (5) through the tests; every wgmma variant and the default (tile 0) vs PyTorch SDPA.
set -u
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
t() { echo "-- $(date +%T) $*"; }
show() {
  grep -E "^  attention .* tile [0-9]:" "$1" | head -n "$2"
  grep -v -E "^  attention|^\[ +(RUN|OK) " "$1" | head -n 40
  grep -E "^\[  (PASSED|FAILED)  \]|tests? ran" "$1"
  echo "cases run: $(grep -c -E " tile [0-9]: rel_l2" "$1")"
}
t "tests tiles 7,8"
KPT_GPU_ATTENTION_TILES=7,8 timeout -k 2 26 bin/kpt_gpu_tests --gtest_color=no \
  --gtest_filter='CudaAttention*' >t78.log 2>&1
echo "rc $?"; show t78.log 12
t "tests tile 5"
KPT_GPU_ATTENTION_TILES=5 timeout -k 2 8 bin/kpt_gpu_tests --gtest_color=no \
  --gtest_filter='CudaAttention.MatchesReference:CudaAttention.SeqMajorOperands' >t5.log 2>&1
echo "rc $?"; show t5.log 4
t "kpt bench 0,4,5,6,7,8"
timeout -k 2 12 bin/kpt_gpu_bench --attention --tiles 0,4,5,6,7,8 2>&1 | tail -n 74
t "torch"
PYTHONUNBUFFERED=1 timeout -k 2 17 python3 gpu_bench_torch.py --attention 2>&1 | tail -n 26
t "memcheck tile 8"
KPT_GPU_ATTENTION_TILES=8 timeout -k 2 9 compute-sanitizer --tool memcheck bin/kpt_gpu_tests \
  --gtest_color=no --gtest_filter='CudaAttention.UnequalQueryAndKeyLengths' 2>&1 \
  | grep -v "^  attention" | tail -n 4
t "done"
