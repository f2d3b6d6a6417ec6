"""Caption adherence of the embedded model, judged by OpenCV: one-figure captions with a guidance sweep,
two-figure scenes, inpainting that adds a figure, CPU time per image and the size of the weights.

    python bench/quality.py                                  # 240 captions, 200 scenes, 2 seeds, guidance 5
    python bench/quality.py --guidance 1 3 5 7.5 --out bench/results/quality.json
    python bench/quality.py --captions 30 --scenes 30 --seeds 1      # a quick look

Images come from the manager's own pipelines for the embedded model (the Text to image view, and the
dedicated inpainting view the Inpaint tab uses) with a fresh default scheduler, 20 steps, 64×64 — the
tabs' settings — batched 32 a call; inpainting results are composited as the tab does, so only the mask
changes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import Registry  # noqa: E402
from pipelines.device.manager import PipelineManager  # noqa: E402
from pipelines.front.registry import EMBEDDED_MODEL  # noqa: E402
from shapeworld.evaluate import (  # noqa: E402
    evaluation_cases,
    inpaint_cases,
    pipeline_generator,
    pipeline_inpainter,
    scene_cases,
    score,
    score_inpaint,
    score_scenes,
)

TARGETS = {"colour": 0.95, "shape": 0.95, "size": 0.95, "position": 0.85, "background": 0.95,
           "two_figures": 0.70, "inpaint_add": 0.90}


def weights_megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*.safetensors")) / 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--captions", type=int, default=240)
    p.add_argument("--scenes", type=int, default=200, help="two-figure captions, and inpainting cases")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--guidance", type=float, nargs="+", default=[5.0])
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    manager = PipelineManager(Registry(), device="cpu", dtype="float32")
    preset = manager.registry.get("shapes")

    def view(kind: str):
        pipe = manager.pipeline("shapes", kind)
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)  # fresh: it carries state
        return pipe

    seeds = range(args.seeds)
    rows = {}
    for guidance in args.guidance:
        start = time.perf_counter()
        single = score(pipeline_generator(view("txt2img"), preset.steps, guidance), evaluation_cases(args.captions), seeds)
        per_image = (time.perf_counter() - start) / (args.captions * args.seeds)
        scenes = score_scenes(pipeline_generator(view("txt2img"), preset.steps, guidance), scene_cases(args.scenes), seeds)
        adds = score_inpaint(pipeline_inpainter(view("inpaint"), preset.steps, guidance), inpaint_cases(args.scenes), seeds)
        rows[guidance] = {"single": single, "two_figures": scenes, "inpaint_add": adds, "seconds_per_image_batched": round(per_image, 3)}
        cells = "  ".join(f"{k} {v:.3f}" for k, v in single.items())
        print(f"guidance {guidance:>4}: {cells}  two figures {scenes:.3f}  inpaint-add {adds['both']:.3f} "
              f"(outside unchanged {adds['outside_unchanged']:.3f})  {per_image:.3f} s/image batched", flush=True)
    print("targets:       " + "  ".join(f"{k} {v:.2f}" for k, v in TARGETS.items()))
    print(f"weights: {weights_megabytes(EMBEDDED_MODEL):.1f} MB (target ≤ 60)")
    if args.out:
        args.out.write_text(json.dumps({"weights_mb": round(weights_megabytes(EMBEDDED_MODEL), 1),
                                        **{str(k): v for k, v in rows.items()}}, indent=2))


if __name__ == "__main__":
    main()
