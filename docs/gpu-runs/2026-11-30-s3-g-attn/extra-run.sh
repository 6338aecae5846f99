#!/usr/bin/env bash
# g-attn, after W3 (~30 s): the persistent launches' multi-block path (ManyQueryBlocks, tiles 7
# and 8), then the default dispatch (tile 0) on the other tests' first cases.
set -u
t() { echo "-- $(date +%T) $*"; }
t "ManyQueryBlocks tiles 7,8"
timeout -k 2 20 bin/kpt_gpu_tests --gtest_color=no --gtest_filter='CudaAttention.ManyQueryBlocks' 2>&1 | tail -n 12
t "default (tile 0): SeqMajorOperands, UnequalQueryAndKeyLengths"
KPT_GPU_ATTENTION_TILES=0 timeout -k 2 15 bin/kpt_gpu_tests --gtest_color=no \
  --gtest_filter='CudaAttention.SeqMajorOperands:CudaAttention.UnequalQueryAndKeyLengths' 2>&1 | tail -n 22
t "done"
