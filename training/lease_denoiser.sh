#!/usr/bin/env bash
# One GPU lease for the denoiser, start to finish: train with --anneal-in-budget, export
# the best weights (parity-checked against PyTorch), measure BSD68/Set12 PSNR. Everything
# it makes goes to $OUT (the device tool brings that folder back).
#
# Here, before the lease (the data travels as the ignored folder .devdata, ~17 MB):
#   bash training/lease_denoiser.sh --prepare
# On the device (run tool, carry [".devdata"], timeout_s 600):
#   bash training/lease_denoiser.sh MINUTES [extra train options...]
# A dry run on the CPU (what the tests cannot afford):
#   OUT=/tmp/lease DEVICE=cpu INIT=training/checkpoints/dn_gray/best.pt \
#       bash training/lease_denoiser.sh 1 --features 48 --batch 8 --precision fp32
#
# Defaults: grow the shipped 48-wide model to 64 features, batch 128, bf16, lr 5e-4 -> 1e-5
# (see training/README.md, "On a GPU lease"). Then, back here: compare $OUT/bench.md with
# benchmarks/results/denoiser.md; if it is better, copy $OUT/dn_gray to
# training/checkpoints/, re-export and rerun the benchmark with --card as the README says.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=.devdata

if [ "${1:-}" = "--prepare" ]; then
    SHARED=${EDGERESTORE_SHARED_DATA:-../shared/data}
    mkdir -p "$DATA/train" "$DATA/testsets"
    cp -r "$SHARED/train/Train400" "$DATA/train/"
    cp -r "$SHARED/testsets/BSD68" "$SHARED/testsets/Set12" "$DATA/testsets/"
    du -sh "$DATA"
    exit 0
fi

MINUTES=${1:?usage: lease_denoiser.sh MINUTES [train options] | --prepare}
shift
: "${OUT:?set OUT to the folder to write into}"
[ -d "$DATA/train/Train400" ] || { echo "no $DATA/train/Train400: run with --prepare first and carry .devdata" >&2; exit 2; }
PY=${PYTHON:-python3}
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1 || true

"$PY" -m edgerestore -v train denoise --data "$DATA/train/Train400" --out "$OUT/dn_gray" \
    --minutes "$MINUTES" --device "${DEVICE:-cuda}" \
    --init-from "${INIT:-training/checkpoints/dn_gray/best.pt}" \
    --features 64 --batch 128 --lr 5e-4 --lr-min 1e-5 --precision bf16 --log-every 100 \
    --anneal-in-budget "$@" 2>&1 | tail -n 60 > "$OUT/train.out"

"$PY" -m edgerestore export "edgerestore.models.ffdnet:$OUT/dn_gray/best.pt" \
    -o "$OUT/dn-gray.onnx" --name dn-gray > "$OUT/export.out" 2>&1

EDGERESTORE_SHARED_DATA="$DATA" "$PY" benchmarks/bench_denoiser.py --model "$OUT/dn-gray.onnx" \
    --no-bm3d --color-sets "" --threads "$(nproc)" --repeat 3 --out "$OUT/bench.md" > /dev/null
grep -E "BSD68|Set12" "$OUT/bench.md" | head -n 12
tail -n 1 "$OUT/train.out"
