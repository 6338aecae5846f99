#!/bin/bash
# Load-to-first-result, ONNX file against engine file (issue 6): for each model, kpt optimize -o
# writes build/engines/NAME.kpt once, then build/bench/kpt_engine_load_bench measures in a fresh
# process each: the ONNX file (import + optimize + prepare + first run), the engine (map + verify
# + prepare + first run) and the engine without weight checksums (--no-verify). "warm": the files
# are in the page cache (one untimed load first); "cold" (--cold, needs root): the page cache is
# dropped before each measurement. One JSON line per measurement, then a markdown table.
#
# Usage: scripts/bench_engine_load.sh [--cold] [--threads N] [--only S] [--models DIR]
#   --models DIR  folder holding bench-models/ and models/ (default build)
set -euo pipefail
cd "$(dirname "$0")/.."

cold=0 threads=2 only="" models=build
while [ $# -gt 0 ]; do
  case "$1" in
    --cold) cold=1 ;;
    --threads) threads=$2; shift ;;
    --only) only=$2; shift ;;
    --models) models=$2; shift ;;
    *) echo "bench_engine_load.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
kpt=build/kpt bench=build/bench/kpt_engine_load_bench
for p in $kpt $bench; do
  [ -x "$p" ] || { echo "bench_engine_load.sh: $p not found; build first" >&2; exit 1; }
done
if [ $cold = 1 ] && ! { sync && echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
  echo "bench_engine_load.sh: --cold needs root (writing /proc/sys/vm/drop_caches)" >&2
  exit 1
fi

# name | model | inputs
rows=(
  "bert_base|$models/bench-models/bert_base/model.onnx|--input input_ids=1x128"
  "gpt_small|$models/bench-models/gpt_small/model.onnx|--input input_ids=1x128"
  "resnet50|$models/bench-models/resnet50/model.onnx|--input pixel_values=1x3x224x224"
  "llama_1b|$models/models/llama_1b.onnx|--input input_ids=1x128"
)
mkdir -p build/engines build/perf
out=build/perf/engine_load.jsonl
: >"$out"
measure() {  # label file args...
  local label=$1 file=$2
  shift 2
  if [ $cold = 1 ]; then
    sync && echo 3 >/proc/sys/vm/drop_caches
  else
    $bench "$file" "$@" >/dev/null  # page cache warm
  fi
  local j
  j=$($bench "$file" "$@")
  echo "{\"row\":\"$label\",\"cache\":\"$([ $cold = 1 ] && echo cold || echo warm)\",\"result\":$j}" | tee -a "$out"
}
for row in "${rows[@]}"; do
  IFS='|' read -r name model inputs <<<"$row"
  [ -z "$only" ] || [[ "$name" == *"$only"* ]] || continue
  [ -f "$model" ] || { echo "skip $name: $model missing (see docs/PERFORMANCE.md)" >&2; continue; }
  engine=build/engines/$name.kpt
  [ -f "$engine" ] || $kpt optimize "$model" -o "$engine"
  # shellcheck disable=SC2086
  measure "$name onnx" "$model" $inputs --threads "$threads"
  # shellcheck disable=SC2086
  measure "$name kpt" "$engine" $inputs --threads "$threads"
  # shellcheck disable=SC2086
  measure "$name kpt --no-verify" "$engine" $inputs --threads "$threads" --no-verify
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| model | file | cache | load ms | first run ms | load-to-first-result ms | speedup | RSS after load MB |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
base = {}
for r in rows:
    name, kind = r["row"].split(" ", 1)
    res = r["result"]
    if kind == "onnx":
        base[name] = res["total_ms"]
    speed = base.get(name, res["total_ms"]) / res["total_ms"]
    print(f"| {name} | {kind} | {r['cache']} | {res['load_ms']:.0f} | {res['first_run_ms']:.0f} | "
          f"{res['total_ms']:.0f} | {speed:.1f}x | {res['rss_after_load_mb']:.0f} |")
PY
