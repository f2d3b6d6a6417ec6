#!/usr/bin/env bash
# A drawing style for a shipped model, on one GPU, side by side on the card:
#   - its decoder fine-tuned on every style the world draws (encoder frozen, so nothing else changes);
#   - the style's LoRA on its U-Net.
# Usage: bash shapeworld/style_on_gpu.sh OUTDIR [MINUTES] [STYLE]
#        SMOKE=1 bash shapeworld/style_on_gpu.sh OUTDIR 0.05     # the same steps, tiny, on a CPU
set -euo pipefail
out=${1:?output folder}
minutes=${2:-2.0}
style=${3:-outline}
python=${PYTHON:-python3}
start=${START:-assets/shapes-model}
if [ -n "${SMOKE:-}" ]; then
    images=64; workers=1; batch=8
else
    images=100000; workers=7; batch=512
fi
mkdir -p "$out"
stamp() { echo "[$(date +%T)] $*"; }
stamp "decoder on every style and the $style LoRA, $minutes min each"
$python -m shapeworld.train decoder --vae "$start/vae" --out "$out/vae" --images $images --workers $workers \
    --steps 1000000 --max-minutes "$minutes" --batch $((batch / 2)) --lr 2e-4 > "$out/decoder.log" 2>&1 &
$python -m shapeworld.train lora --start "$start" --out "$out/loras/$style" --style "$style" --rank 16 \
    --images $images --workers $workers --steps 1000000 --max-minutes "$minutes" --batch $batch --lr 5e-4 \
    --warmup 50 > "$out/lora.log" 2>&1 &
wait
grep -h -E "PSNR|done|saved" "$out/decoder.log" "$out/lora.log" || true
stamp "done: $out"
