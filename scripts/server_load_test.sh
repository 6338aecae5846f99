#!/usr/bin/env bash
# Load test of `kpt serve`: wrk POSTs JSON inference requests for the trivial Add model at
# 64 connections. Fails on any non-2xx response or socket error, on resident memory growing
# more than 64 MiB during the run, or on a non-zero exit status after SIGTERM.
# Usage: server_load_test.sh KPT [SECONDS] [CONNECTIONS] [THREADS]   (CTest skips with 77 without wrk)
set -euo pipefail
kpt=$(realpath "$1")
seconds=${2:-30}
connections=${3:-64}
wrk_threads=${4:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { echo "SKIP: wrk is not installed"; exit 77; }

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT
/usr/bin/python3 "$here/scripts/server_make_models.py" "$tmp/repo" --slow-layers 1
"$kpt" serve "$tmp/repo/add/1/model.onnx" --model-name add --http-port 0 2>"$tmp/server.log" &
server_pid=$!
port=""
for _ in $(seq 600); do
  port=$(sed -n 's|.*listening on http://[^:]*:\([0-9]*\).*|\1|p' "$tmp/server.log")
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: server did not start"; cat "$tmp/server.log"; exit 1; }
url="http://127.0.0.1:$port/v2/models/add/infer"
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }

wrk -t"$wrk_threads" -c"$connections" -d2s -s "$here/tests/server/post_add.lua" "$url" >/dev/null  # warm-up
rss_start=$(rss_kib)
( peak=0; while kill -0 "$server_pid" 2>/dev/null; do r=$(rss_kib || echo 0); [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" >"$tmp/peak"; sleep 0.5; done ) &
sampler=$!
wrk -t"$wrk_threads" -c"$connections" -d"${seconds}s" --timeout 5s --latency -s "$here/tests/server/post_add.lua" "$url" | tee "$tmp/wrk.txt"
sleep 0.6
kill "$sampler" 2>/dev/null || true
rss_peak=$(cat "$tmp/peak" 2>/dev/null || echo "$rss_start")

status=0
if grep -q "Non-2xx" "$tmp/wrk.txt"; then echo "FAIL: non-2xx responses"; status=1; fi
if grep -q "Socket errors" "$tmp/wrk.txt"; then echo "FAIL: socket errors or timeouts"; status=1; fi
growth=$(( (rss_peak - rss_start) / 1024 ))
echo "resident memory: $((rss_start / 1024)) MiB after warm-up, peak $((rss_peak / 1024)) MiB during the run"
if [ "$growth" -gt 64 ]; then echo "FAIL: memory grew by $growth MiB under load"; status=1; fi
kill -TERM "$server_pid"
if wait "$server_pid"; then echo "server exited 0 after SIGTERM"; else echo "FAIL: server exit status $?"; status=1; fi
server_pid=""
[ $status -eq 0 ] && echo PASS
exit $status
