#!/usr/bin/env bash
# The embedded model's training on one GPU, start to finish, inside a fixed time budget:
#   1. scenes drawn and encoded once (the shipped autoencoder is kept: it reads scenes as well as shapes);
#   2. two text-to-image recipes side by side on the same card (small models leave most of it idle);
#   3. each judged (shapeworld.evaluate), the better kept (position and two-figure scenes count most);
#   4. the inpainting variant fine-tuned from it, and the pair judged together.
# Usage: bash shapeworld/train_on_gpu.sh OUTDIR [T2I MINUTES] [INPAINT MINUTES]
#        SMOKE=1 bash shapeworld/train_on_gpu.sh OUTDIR 0.2 0.1     # the same steps, tiny, on a CPU
set -euo pipefail
out=${1:?output folder}
minutes=${2:-3.5}
inpaint_minutes=${3:-1.25}
python=${PYTHON:-python3}
vae=assets/shapes-model/vae
if [ -n "${SMOKE:-}" ]; then  # every stage, a few examples each: proves the script before a GPU runs it
    images=2000; inpaint_images=500; workers=2; batch=16; judge="--captions 6 --scenes 6 --seeds 1"
    size="--channels 32 32 32 32 --text-width 64"
else
    images=400000; inpaint_images=200000; workers=15; batch=1024; judge="--captions 240 --scenes 200 --seeds 1"
    size=""
fi
mkdir -p "$out"
stamp() { echo "[$(date +%T)] $*"; }

stamp "drawing and encoding $images scenes"
$python -m shapeworld.train data --vae $vae --out "$out/data" --images $images --workers $workers

stamp "two recipes for $minutes min each"
common=(unet --vae $vae --data "$out/data" --steps 1000000 --max-minutes "$minutes" --batch $batch --lr 8e-4 $size)
$python -m shapeworld.train "${common[@]}" --out "$out/A" > "$out/A.log" 2>&1 &
$python -m shapeworld.train "${common[@]}" --out "$out/B" --high-noise-p 0.2 > "$out/B.log" 2>&1 &
wait
tail -n 2 "$out/A.log" "$out/B.log"

stamp "judging both"
for run in A B; do
    $python -m shapeworld.evaluate "$out/$run" $judge --json "$out/$run/scores.json" > /dev/null 2>&1 &
done
wait
best=$($python - "$out" <<'EOF'
import json, sys
from pathlib import Path

def merit(s):  # what the first model could not do counts most: position, then two-figure scenes
    single = s["single"]
    return single.get("position", 0) + s["two_figures"] + 0.25 * sum(single[k] for k in ("colour", "shape", "size", "background"))

scored = [Path(sys.argv[1]) / run / "scores.json" for run in ("A", "B")]
runs = {path.parent.name: json.loads(path.read_text()) for path in scored if path.exists()}  # a failed run drops out
for run, s in runs.items():
    print(run, round(merit(s), 3), json.dumps(s), file=sys.stderr)
print(max(runs, key=lambda r: merit(runs[r])))
EOF
)
stamp "kept recipe $best; inpainting variant for $inpaint_minutes min"
$python -m shapeworld.train inpaint --start "$out/$best" --out "$out/$best/inpainting" --images $inpaint_images \
    --workers $workers --steps 1000000 --max-minutes "$inpaint_minutes" --batch $batch --lr 3e-4 --warmup 100 \
    > "$out/inpaint.log" 2>&1
tail -n 2 "$out/inpaint.log"
$python -m shapeworld.evaluate "$out/$best" --inpaint "$out/$best/inpainting" $judge --json "$out/$best/scores-final.json" 2>/dev/null
rm -rf "$out/model" && cp -r "$out/$best" "$out/model" && cp "$out"/*.log "$out/model/"
stamp "done: $out/model"
