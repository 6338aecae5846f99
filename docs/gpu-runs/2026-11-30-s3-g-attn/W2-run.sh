#!/usr/bin/env bash
# g-attn W2: the sm_90a flash attention (tile 4: TMA producer + 2 wgmma consumer warpgroups,
# tile 5: the same with pingpong turns) vs mma.sync (tile 2) vs PyTorch SDPA, same run.
set -u
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
t() { echo "-- $(date +%T) $*"; }
# Per test log: the wgmma cases' errors (first 70), failures in full (first N lines), summary.
show() {
  grep -E "^  attention .* tile [4-9]:" "$1" | head -n 70
  grep -v -E "^  attention|^\[ +(RUN|OK) " "$1" | head -n "$2"
  grep -E "^\[  (PASSED|FAILED)  \]|tests? ran" "$1"
}
t "tests tiles 4,5"
KPT_GPU_ATTENTION_TILES=4,5 timeout -k 2 55 bin/kpt_gpu_tests --gtest_color=no \
  --gtest_filter='CudaAttention*' >t45.log 2>&1
echo "rc $?"; show t45.log 60
grep -c " tile [45]: rel_l2" t45.log
t "kpt bench 2,4,5"
timeout -k 2 20 bin/kpt_gpu_bench --attention --tiles 2,4,5 2>&1 | tail -n 32
t "torch"
PYTHONUNBUFFERED=1 timeout -k 2 25 python3 gpu_bench_torch.py --attention 2>&1 | tail -n 25
t "memcheck tile 5"
KPT_GPU_ATTENTION_TILES=5 timeout -k 2 15 compute-sanitizer --tool memcheck bin/kpt_gpu_tests \
  --gtest_color=no --gtest_filter='CudaAttention.UnequalQueryAndKeyLengths' 2>&1 \
  | grep -v "^  attention" | tail -n 12
t "ncu tile 4, bf16 B2 H16 S4096 D128"
timeout -k 2 20 ncu --clock-control none -k regex:flash_forward_sm90 -c 1 \
  --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
  bin/kpt_gpu_bench --attention --quick --tiles 4 2>&1 | grep -v "^==PROF==" | tail -n 70
t "done"
