#!/bin/bash
# The issue-5 performance table: every benchmark model with kpt bench --compare ort (ONNX
# Runtime 1.30 on the same inputs, in the same run, never concurrently) at --threads 2, one JSON
# per row in build/perf/, then kpt bench-report into docs/perf/cpu_vs_ort.svg and a markdown
# table (printed, and written to build/perf/cpu_vs_ort.md).
#
# Usage: scripts/bench_all.sh [--quick] [--threads N] [--only SUBSTRING]
#   --quick      3 timed runs and 1 warm-up per row instead of 20 and 3 (checks the tooling)
#   --threads N  threads for kpt and ONNX Runtime alike (default 2)
#   --only S     run only the rows whose label contains S (e.g. --only bert_base)
# Run from anywhere; paths are relative to the repository root. Rows whose model file is
# missing are reported with the script that makes it and skipped; the script then exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

iterations=20 warmup=3 threads=2 only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) iterations=3 warmup=1 ;;
    --threads) threads=$2; shift ;;
    --only) only=$2; shift ;;
    *) echo "bench_all.sh: unknown argument '$1'; expected --quick, --threads N or --only S" >&2; exit 2 ;;
  esac
  shift
done

kpt=build/kpt
if [ ! -x "$kpt" ]; then
  echo "bench_all.sh: $kpt not found; build first: cmake -S . -B build -G Ninja && cmake --build build" >&2
  exit 1
fi

bench=build/bench-models
dynamo=build/test-models/dynamo-models
# label | model | precision | --input arguments
rows=(
  "bert_base b1 s128|$bench/bert_base/model.onnx|fp32|--input input_ids=1x128"
  "bert_base b8 s128|$bench/bert_base/model.onnx|fp32|--input input_ids=8x128"
  "gpt_small b1 s128|$bench/gpt_small/model.onnx|fp32|--input input_ids=1x128"
  "resnet50 b1|$bench/resnet50/model.onnx|fp32|--input pixel_values=1x3x224x224"
  "resnet50 b8|$bench/resnet50/model.onnx|fp32|--input pixel_values=8x3x224x224"
  "llama_1b b1 s128|build/models/llama_1b.onnx|fp32|--input input_ids=1x128"
  "vit_b16 b1|$dynamo/vit_b16/model.onnx|fp32|--input pixel_values=1x3x224x224"
  "distilbert_base b8 s128|$dynamo/distilbert_base/model.onnx|fp32|--input input_ids=8x128"
  "bert_base b8 s128 bf16|$bench/bert_base/model.onnx|bf16|--input input_ids=8x128"
  "bert_base b8 s128 int8|$bench/bert_base/model.onnx|int8|--input input_ids=8x128"
  "bert_base b8 s128 auto|$bench/bert_base/model.onnx|auto|--input input_ids=8x128"
)

# Which script makes a model file that is missing.
maker() {
  case "$1" in
    "$bench"/*) echo "/usr/bin/python3 scripts/make_bench_models.py (writes $bench)" ;;
    "$dynamo"/*) echo "/usr/bin/python3 scripts/make_dynamo_cases.py build/test-models" ;;
    build/models/llama_1b.onnx)
      echo "/usr/bin/python3 ../shared/models/materialize.py ../shared/models/llama_1b.skeleton.onnx build/models/llama_1b.onnx" ;;
    *) echo "(no known script)" ;;
  esac
}

mkdir -p build/perf docs/perf
results=() missing=0 failed=0
for row in "${rows[@]}"; do
  IFS='|' read -r label model precision inputs <<<"$row"
  if [ -n "$only" ] && [[ "$label" != *"$only"* ]]; then continue; fi
  if [ ! -f "$model" ]; then
    echo "skip  $label: $model is missing; make it with: $(maker "$model")" >&2
    missing=1
    continue
  fi
  json="build/perf/$(echo "$label" | tr ' ' '_').json"
  rm -f "$json"  # a stale result from an earlier run must not stand in for this one
  echo "== $label ($model, $precision, $threads threads)"
  # shellcheck disable=SC2086  # $inputs holds several words on purpose
  if "$kpt" bench "$model" $inputs --precision "$precision" --threads "$threads" \
       --iterations "$iterations" --warmup "$warmup" --compare ort --label "$label" --json "$json"; then
    results+=("$json")
  elif [ -f "$json" ]; then
    # The run finished but the outputs disagree: the table shows it as FAILED.
    results+=("$json")
    failed=1
  else
    echo "bench_all.sh: kpt bench failed for $label" >&2
    failed=1
  fi
done

if [ ${#results[@]} -gt 0 ]; then
  "$kpt" bench-report "${results[@]}" --svg docs/perf/cpu_vs_ort.svg --markdown build/perf/cpu_vs_ort.md
fi
if [ $missing -ne 0 ] || [ $failed -ne 0 ]; then exit 1; fi
