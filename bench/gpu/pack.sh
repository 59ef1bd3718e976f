#!/usr/bin/env bash
# Packs what bench/gpu/check.sh needs on a lent GPU machine into .gpu/ (ignored by git):
# clipshift-fused built with CUDA (stripped), ONNX Runtime's CUDA libraries from the
# official onnxruntime-gpu wheel, and the onnxconverter-common wheel for the float16
# export, as one xz archive cut into parts that each fit a device call beside the
# working tree (64 MiB a call in all). bench/gpu/README.md lists the calls.
set -euo pipefail
cd "$(dirname "$0")/../.."
PART_MIB=${PART_MIB:-40}

cargo xtask fetch-runtime --gpu
# Its own target directory: the CUDA feature would otherwise rebuild the stages of target/debug.
CARGO_TARGET_DIR=target/cuda cargo build -p clipshift-fused --features cuda

kit=target/gpu-kit
rm -rf "$kit" .gpu
mkdir -p "$kit/ort" "$kit/bin" "$kit/wheels" .gpu
runtime=$(ls -d .cache/onnxruntime/*-gpu | tail -1)
cp "$runtime"/libonnxruntime.so.* "$runtime"/libonnxruntime_providers_cuda.so \
    "$runtime"/libonnxruntime_providers_shared.so "$kit/ort/"
strip -o "$kit/bin/clipshift-fused" target/cuda/debug/clipshift-fused
converter=$(grep -E '^onnxconverter-common==' models/requirements.txt)
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: "$converter" -d "$kit/wheels"

tar -C "$kit" -cf - . | xz -T0 -6 >.gpu/kit.tar.xz
sha256sum <.gpu/kit.tar.xz | cut -d' ' -f1 >.gpu/kit.sha256
split -b "${PART_MIB}M" -d -a 1 .gpu/kit.tar.xz .gpu/kit.part-
rm .gpu/kit.tar.xz
ls -l .gpu
parts=$(ls .gpu/kit.part-* | wc -l)
echo "kit: $parts parts in .gpu/; the device calls, one after another while the machine is warm:"
for part in .gpu/kit.part-*; do
    if [ "$part" = "$(ls .gpu/kit.part-* | tail -1)" ]; then
        echo "  run(command='bash bench/gpu/check.sh run', carry=['$part', '.gpu/kit.sha256'], timeout_s=480)"
    else
        echo "  run(command='bash bench/gpu/check.sh receive', carry=['$part'], timeout_s=60)"
    fi
done
