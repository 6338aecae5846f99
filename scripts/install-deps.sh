#!/usr/bin/env bash
# Installs the Debian packages KernelPyTorch needs to build, test and make its demo models.
# Idempotent: installs only what is missing, and runs apt-get update only when it must.
set -euo pipefail

packages=(
  cmake ninja-build g++ make pkg-config
  libprotobuf-dev protobuf-compiler
  libdnnl-dev libxxhash-dev
  libgtest-dev libgmock-dev
  nlohmann-json3-dev libcli11-dev
  python3-numpy python3-onnx python3-torch python3-torchvision
  libboost-dev wrk prometheus curl
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js runs the ONNX Runtime peer (npm's onnxruntime-node); Debian's is used only when the
# machine has none.
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# ONNX Runtime 1.30 (CPU) for reference outputs and speed comparisons.
ort_dir="$(dirname "$0")/../tools/ort"
if [ ! -d "$ort_dir/node_modules/onnxruntime-node" ]; then
  echo "install-deps: installing onnxruntime-node into tools/ort"
  (cd "$ort_dir" && ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --no-audit --no-fund --loglevel=error)
fi
