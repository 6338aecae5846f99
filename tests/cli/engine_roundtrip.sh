#!/usr/bin/env bash
# onnx -> kpt -> run equals the ONNX run bit for bit: for every model.onnx below the given
# folders, `kpt optimize -o` writes an engine, then `kpt run --random` on the model and on the
# engine (same seed) must write byte-identical outputs (at fp32; other precisions must run).
# Models whose own ONNX run fails with random inputs (index inputs out of range, ...) are
# skipped and counted. Usage: engine_roundtrip.sh KPT [--precision P] DIR...
set -uo pipefail
kpt=$1
shift
precision=fp32
if [ "${1:-}" = "--precision" ]; then
  precision=$2
  shift 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0 skip=0
while IFS= read -r model; do
  name=${model%/model.onnx}
  name=${name##*/}
  rm -rf "$work"/*
  if ! "$kpt" run "$model" --random --seed 3 --output-dir "$work/onnx" >"$work/onnx.log" 2>&1; then
    skip=$((skip + 1))
    continue
  fi
  if ! "$kpt" optimize "$model" -o "$work/m.kpt" --precision "$precision" >"$work/opt.log" 2>&1; then
    echo "FAIL $name: kpt optimize -o failed: $(tail -1 "$work/opt.log")"
    fail=$((fail + 1))
    continue
  fi
  if ! "$kpt" run "$work/m.kpt" --random --seed 3 --output-dir "$work/kpt" >"$work/kpt.log" 2>&1; then
    echo "FAIL $name: running the engine failed: $(tail -1 "$work/kpt.log")"
    fail=$((fail + 1))
    continue
  fi
  if [ "$precision" = fp32 ] && ! diff -rq "$work/onnx" "$work/kpt" >/dev/null; then
    echo "FAIL $name: engine outputs differ from the ONNX run"
    fail=$((fail + 1))
    continue
  fi
  pass=$((pass + 1))
done < <(find "$@" -name model.onnx | sort)
echo "engine round trip ($precision): $pass equal, $fail failed, $skip skipped (ONNX run failed)"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
