#!/usr/bin/env bash
# The GPU check (issue 19, part 4), run by the device tool on a lent machine, from the
# repository root, with the kit that bench/gpu/pack.sh cut into .gpu/kit.part-* here.
# bench/gpu/README.md lists the calls: each carries one part, and the last one runs.
#
#   bash bench/gpu/check.sh receive   keep the parts this call carried
#   bash bench/gpu/check.sh run       unpack the kit, export ViT-B/32 (float32 and
#                                     float16), check CUDA against the CPU, measure
#
# Everything it prints also goes to $OUT/check.log, and the runs' logs and nvidia-smi
# samples to $OUT/logs.tar.gz (the device tool brings back at most 8 files).
set -uo pipefail

KEEP=/tmp/clipshift-gpu # outlives a call while the machine stays warm
OUT=${OUT:-$PWD/target/gpu-check}
mkdir -p "$KEEP" "$OUT"
for part in .gpu/kit.part-* .gpu/kit.sha256; do
    [ -f "$part" ] && cp "$part" "$KEEP/"
done
ls -l "$KEEP"
[ "${1:-}" = run ] || exit 0

exec > >(tee "$OUT/check.log") 2>&1
LOGS=$KEEP/logs
rm -rf "$LOGS" && mkdir -p "$LOGS"
trap 'tar -C "$KEEP" -czf "$OUT/logs.tar.gz" logs' EXIT
fail() { echo "FAIL: $*"; exit 1; }
clock() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(clock)" 'BEGIN { printf "%.2f", b - a }'; }

echo "== kit"
want=$(cat "$KEEP/kit.sha256") || fail "no kit.sha256: carry .gpu/kit.sha256"
have=$(cat "$KEEP"/kit.part-* | sha256sum | cut -d' ' -f1)
[ "$have" = "$want" ] || fail "the kit's parts are incomplete (sha256 $have, want $want): carry the missing ones"
rm -rf "$KEEP/kit"
cat "$KEEP"/kit.part-* | python3 -c "import sys, tarfile; tarfile.open(fileobj=sys.stdin.buffer, mode='r|xz').extractall('$KEEP/kit')" ||
    fail "cannot unpack the kit"
FUSED=$KEEP/kit/bin/clipshift-fused
ORT_DYLIB_PATH=$(ls "$KEEP"/kit/ort/libonnxruntime.so.* | head -1)
export ORT_DYLIB_PATH
# CUDA 13's cuBLAS, cuDNN, cuRAND and runtime come with the image's PyTorch wheels.
nvidia_libs=$(python3 -c "import site; print(' '.join(site.getsitepackages()))" |
    xargs -n1 -I{} find {} -path '*nvidia*' -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | paste -sd:)
export LD_LIBRARY_PATH=$nvidia_libs:${LD_LIBRARY_PATH:-}
missing=$(ldd "$KEEP/kit/ort/libonnxruntime_providers_cuda.so" | grep "not found")
[ -z "$missing" ] || echo "warning: the CUDA provider misses libraries (LD_LIBRARY_PATH=$LD_LIBRARY_PATH):
$missing"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "cores: $(nproc); ONNX Runtime: $ORT_DYLIB_PATH"

echo "== export"
python3 -m pip install -q --no-index --no-deps --target /tmp/site "$KEEP"/kit/wheels/*.whl || fail "pip install"
VIT=$KEEP/vit-b-32
t=$(clock)
PYTHONPATH=/tmp/site python3 models/export_clip.py --random-init vit-b-32 --fp16 --no-text --skip-smoke-test \
    --output "$VIT" | tail -2 || fail "export"
echo "export: $(since "$t") s"

echo "== data"
python3 - "$KEEP" <<'EOF' || fail "data"
import pathlib, sys
keep = pathlib.Path(sys.argv[1])
photos = sorted(pathlib.Path("data/samples").glob("*.jpg"))
for count in (16, 1024):
    out = keep / f"data-{count}"
    out.mkdir(exist_ok=True)
    for j in range(count):
        data = photos[j % len(photos)].read_bytes()
        if j >= len(photos):  # after the end-of-image marker: a distinct file, the same pixels
            data += f"clipshift-bench-copy-{j}".encode()
        (out / f"photo_{j:04}.jpg").write_bytes(data)
print(f"{len(photos)} photographs -> data-16, data-1024")
EOF

fused() { # NAME DATA MODEL DEVICE BATCH: one clipshift-fused run, its log in $LOGS/NAME.log
    local t0 status
    t0=$(clock)
    RUST_LOG=info "$FUSED" --run "$KEEP/runs/$1" --fresh --data "$2" --model "$3" --device "$4" --batch "$5" \
        >"$LOGS/$1.log" 2>&1
    status=$?
    grep -E "^(augment|encode|metrics)" "$LOGS/$1.log"
    echo "$1: $(since "$t0") s wall, exit $status"
    [ $status -eq 0 ] || tail -20 "$LOGS/$1.log"
    return $status
}

echo "== CUDA against the CPU (16 photographs, 160 variants)"
for model in tiny "$VIT"; do
    name=$(basename "$model")
    fused "$name-cpu" "$KEEP/data-16" "$model" cpu 32 || fail "$name on the CPU"
    fused "$name-cuda" "$KEEP/data-16" "$model" cuda 32 || fail "$name under CUDA"
    if ! grep -q "on cuda" "$LOGS/$name-cuda.log"; then
        grep -i "cuda" "$LOGS/$name-cuda.log" | sed "s/\x1b\[[0-9;]*m//g" | tail -5
        fail "$name did not run on CUDA"
    fi
    python3 bench/gpu/tally.py compare "$KEEP/runs/$name-cpu" "$KEEP/runs/$name-cuda" --tolerance 1e-4
done

echo "== throughput and GPU busy (1024 photographs, 10240 variants)"
# First the tiny model, which costs the GPU next to nothing: how many variants per second
# the CPU cores feed (decode, replay, preprocessing, pixel metrics, tables).
for setting in "tiny-batch256 tiny 256" "vit-fp32-batch32 $VIT/model.json 32" \
    "vit-fp32-batch256 $VIT/model.json 256" "vit-fp16-batch256 $VIT/model.fp16.json 256"; do
    read -r name model batch <<<"$setting"
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 100 \
        >"$LOGS/$name.csv" &
    sampler=$!
    fused "$name" "$KEEP/data-1024" "$model" cuda "$batch"
    kill $sampler
    python3 bench/gpu/tally.py busy "$LOGS/$name.csv" "$LOGS/$name.log" "$KEEP/runs/$name"
done
echo "== float16 against float32 (for information: half precision is not expected to pass 1e-4)"
python3 bench/gpu/tally.py compare "$KEEP/runs/vit-fp32-batch256" "$KEEP/runs/vit-fp16-batch256" --tolerance 1e-2
echo "== done"
