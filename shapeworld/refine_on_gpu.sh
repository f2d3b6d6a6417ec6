#!/usr/bin/env bash
# More training for a shipped model, on one GPU, inside a fixed budget:
#   1. scenes drawn and encoded with the model's own autoencoder, more of them with two figures;
#   2. its U-Net and text encoder go on learning (`train unet --start`);
#   3. the inpainting variant from the result (a style LoRA comes after the decoder: style_on_gpu.sh);
#   4. the model judged (shapeworld.evaluate) and everything packed into $PACK (when set) in pieces small
#      enough to travel.
# Usage: bash shapeworld/refine_on_gpu.sh OUTDIR [U-NET MINUTES] [INPAINT MINUTES]
#        SMOKE=1 bash shapeworld/refine_on_gpu.sh OUTDIR 0.1 0.05   # the same steps, tiny, on a CPU
set -euo pipefail
out=${1:?output folder}
minutes=${2:-3.6}
inpaint_minutes=${3:-1.0}
python=${PYTHON:-python3}
start=${START:-assets/shapes-model}
if [ -n "${SMOKE:-}" ]; then
    images=400; inpaint_images=200; workers=2; batch=8; judge="--captions 4 --scenes 4 --seeds 1"
else
    images=300000; inpaint_images=120000; workers=15; batch=1024
    judge="--captions 240 --scenes 200 --seeds 1"
fi
mkdir -p "$out"
stamp() { echo "[$(date +%T)] $*"; }

stamp "drawing and encoding $images scenes"
$python -m shapeworld.train data --vae "$start/vae" --out "$out/data" --images $images --workers $workers \
    --count-p 0.3 0.45 0.25

stamp "U-Net and text encoder from $start for $minutes min"
$python -m shapeworld.train unet --start "$start" --vae "$start/vae" --data "$out/data" --out "$out/model" \
    --steps 1000000 --max-minutes "$minutes" --batch $batch --lr 5e-4 --warmup 100 --save-minutes 1 \
    > "$out/unet.log" 2>&1 || true  # a checkpoint is kept even if the run is cut short
tail -n 2 "$out/unet.log"

stamp "inpainting variant ($inpaint_minutes min)"
$python -m shapeworld.train inpaint --start "$out/model" --out "$out/model/inpainting" --images $inpaint_images \
    --workers $workers --steps 1000000 --max-minutes "$inpaint_minutes" --batch $batch --lr 3e-4 --warmup 100 \
    > "$out/inpaint.log" 2>&1 || true
tail -n 2 "$out/inpaint.log"
stamp "judging"
$python -m shapeworld.evaluate "$out/model" --inpaint "$out/model/inpainting" $judge \
    --json "$out/model/scores-final.json" 2>/dev/null | tail -n 12 || true
cp "$out"/*.log "$out/model/"
stamp "done: $out/model"
