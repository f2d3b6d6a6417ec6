#!/usr/bin/env bash
# How the shipped weights were trained: on one GPU, the autoencoder first, then two U-Net recipes side
# by side on the same card (small models leave most of it idle), each judged, both kept.
# Usage: bash shapeworld/train_on_gpu.sh OUTDIR [U-NET MINUTES]
set -euo pipefail
out=${1:?output folder}
minutes=${2:-4.5}
mkdir -p "$out"
python3 -m shapeworld.train vae --out "$out/vae" --workers 16 --vae-steps 3000 --vae-batch 128
python3 -m shapeworld.train unet --vae "$out/vae" --out "$out/A" --workers 8 --steps 1000000 \
    --max-minutes "$minutes" --batch 256 --lr 3e-4 > "$out/A.log" 2>&1 &
python3 -m shapeworld.train unet --vae "$out/vae" --out "$out/B" --workers 8 --steps 1000000 \
    --max-minutes "$minutes" --batch 512 --lr 6e-4 > "$out/B.log" 2>&1 &
wait
tail -n 3 "$out/A.log" "$out/B.log"
for run in A B; do (
    python3 -m shapeworld.evaluate "$out/$run" --captions 300 --seeds 2 --guidance 1 3 5 7.5 2>/dev/null) &
done > "$out/scores.txt"; wait; cat "$out/scores.txt"
