#!/usr/bin/env bash
# The main job on a fresh machine: make a small real PyTorch model, then show what kpt sees
# in the machine and the model, and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/demo
mkdir -p "$out"
/usr/bin/python3 scripts/make_demo_model.py "$out/tiny_convnet.onnx"
echo
echo "== kpt doctor"
./build/kpt doctor
echo
echo "== kpt inspect $out/tiny_convnet.onnx --shape image=2x3x32x32"
./build/kpt inspect "$out/tiny_convnet.onnx" --shape image=2x3x32x32
echo
echo "== kpt optimize $out/tiny_convnet.onnx --explain"
./build/kpt optimize "$out/tiny_convnet.onnx" --explain
echo
echo "== kpt run $out/tiny_convnet.onnx --random --shape image=2x3x32x32 --output-dir $out/outputs"
./build/kpt run "$out/tiny_convnet.onnx" --random --shape image=2x3x32x32 --output-dir "$out/outputs"
