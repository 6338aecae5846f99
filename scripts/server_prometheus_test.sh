#!/usr/bin/env bash
# A real Prometheus (Debian's `prometheus`) scrapes `kpt serve`'s /metrics every second; after
# a known number of inference requests, the PromQL query nv_inference_request_success must
# return that count for the model. Exits 77 (CTest: skipped) when prometheus is not installed.
# Usage: server_prometheus_test.sh KPT
set -euo pipefail
kpt=$(realpath "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
command -v prometheus >/dev/null || { echo "SKIP: prometheus is not installed"; exit 77; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && kill -TERM "$p" && wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
wait_for_line() {  # FILE SED-EXPR PID -> first match
  local v=""
  for _ in $(seq 600); do
    v=$(sed -n "$2" "$1" | head -1)
    [ -n "$v" ] && { echo "$v"; return 0; }
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL: no match for $2 in $1:" >&2; cat "$1" >&2; return 1
}
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

/usr/bin/python3 "$here/scripts/server_make_models.py" "$tmp/repo" --slow-layers 1
"$kpt" serve "$tmp/repo/add/1/model.onnx" --model-name add --http-port 0 2>"$tmp/server.log" &
pids+=($!)
port=$(wait_for_line "$tmp/server.log" 's|.*listening on http://[^:]*:\([0-9]*\).*|\1|p' "${pids[0]}")

requests=25
body=$(/usr/bin/python3 -c 'import json; d=[0.5]*60; print(json.dumps({"inputs":[{"name":"INPUT0","shape":[3,4,5],"datatype":"FP32","data":d},{"name":"INPUT1","shape":[3,4,5],"datatype":"FP32","data":d}]}))')
for _ in $(seq $requests); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data "$body" "http://127.0.0.1:$port/v2/models/add/infer")
  [ "$code" = 200 ] || { echo "FAIL: inference answered $code"; exit 1; }
done

prom_port=$(free_port)
cat >"$tmp/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: kpt
    static_configs:
      - targets: ['127.0.0.1:$port']
YML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
pids+=($!)

query="http://127.0.0.1:$prom_port/api/v1/query?query=nv_inference_request_success"
for i in $(seq 120); do
  answer=$(curl -s "$query" || true)
  value=$(printf '%s' "$answer" | /usr/bin/python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
except Exception:
    sys.exit(0)
for s in r:
    if s["metric"].get("model") == "add" and s["metric"].get("version") == "1" and s["metric"].get("job") == "kpt":
        print(s["value"][1])
')
  if [ -n "$value" ]; then
    echo "PromQL nv_inference_request_success{model=\"add\",version=\"1\"} = $value after ${i} polls"
    if [ "$value" = "$requests" ]; then echo PASS; exit 0; fi
    echo "FAIL: expected $requests"; exit 1
  fi
  sleep 0.5
done
echo "FAIL: Prometheus never returned the metric; last answer: $answer"
tail -20 "$tmp/prometheus.log"
exit 1
