#!/bin/bash
# kpt bench --compare ort end to end on a small model: ONNX Runtime must run, agree with kpt,
# and the JSON must hold its latencies, the speedup and the agreement per output. Exits 77
# (skipped) when node or npm's onnxruntime-node is not installed.
# Usage: bench_compare_ort.sh KPT MODEL INPUT JSON SOURCE_DIR
set -euo pipefail
kpt=$1 model=$2 input=$3 json=$4 src=$5
if ! command -v node >/dev/null || [ ! -f "$src/tools/ort/node_modules/onnxruntime-node/package.json" ]; then
  echo "skipped: node or tools/ort/node_modules/onnxruntime-node missing (scripts/install-deps.sh)"
  exit 77
fi
rm -f "$json"
KPT_ORT_DIR="$src/tools/ort" "$kpt" bench "$model" --input "$input" --iterations 3 --warmup 1 \
  --threads 1 --compare ort --json "$json" --chart "${json%.json}.svg"
# shellcheck disable=SC2016  # the JavaScript's ${...} is for node, not the shell
node -e '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const need = [j.ort && j.ort.latency_ms && j.ort.latency_ms.p50, j.ort && j.ort.throughput_per_s,
              j.speedup_p50, j.agreement, j.latency_ms.p50];
if (need.some(v => v === undefined)) throw new Error("missing ort/speedup_p50/agreement keys");
if (j.agreement_ok !== true || Object.keys(j.agreement).length === 0) throw new Error("no agreement");
for (const [name, a] of Object.entries(j.agreement)) {
  if (!(a.cosine > 0.999)) throw new Error(`output ${name}: cosine ${a.cosine}`);
}
console.log(`ok: speedup_p50 ${j.speedup_p50.toFixed(3)}, outputs ${Object.keys(j.agreement)}`);
' "$json"
grep -q '<rect class="bar s1"' "${json%.json}.svg"
