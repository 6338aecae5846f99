#!/usr/bin/env bash
# Packs the GPU programs of a build (kpt, kpt_gpu_tests, kpt_gpu_bench, kpt_gpu_model_bench;
# stripped) and the
# shared libraries they need beyond the C/C++ runtime into one folder, so they can run on a GPU
# machine that lacks this project's build dependencies (protobuf, oneDNN): there,
# scripts/gpu-check.sh DIR runs them with DIR/lib on the library path.
# usage: scripts/gpu-pack.sh BUILD_DIR DEST_DIR
set -euo pipefail
build=${1:?usage: gpu-pack.sh BUILD_DIR DEST_DIR}
dest=${2:?usage: gpu-pack.sh BUILD_DIR DEST_DIR}
mkdir -p "$dest/lib"
for prog in kpt kpt_gpu_tests kpt_gpu_bench kpt_gpu_model_bench; do
  cp "$build/$prog" "$dest/$prog"
  strip "$dest/$prog"
done
# The C library, the C++ runtime and the loader come from the target machine (newer there);
# everything else the programs link is carried.
for prog in kpt kpt_gpu_tests kpt_gpu_bench kpt_gpu_model_bench; do
  ldd "$build/$prog" | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so.* | libm.so.* | libstdc++.so.* | libgcc_s.so.* | ld-linux* | libpthread.so.* | \
      libdl.so.* | librt.so.*) ;;
    *) cp -L "$lib" "$dest/lib/" ;;
  esac
done
du -sh "$dest"
