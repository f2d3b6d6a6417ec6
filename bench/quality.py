"""Caption adherence of the embedded model, judged by OpenCV, with a guidance sweep.

    python bench/quality.py                    # 240 captions × 2 seeds, guidance 1, 3, 5, 7.5
    python bench/quality.py --captions 30 --seeds 1 --guidance 5   # quick look

Images come from the manager's own pipeline for the embedded model with a fresh default scheduler,
20 steps, 64×64 — the settings of Text to image — batched 32 captions a call for speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import Registry  # noqa: E402
from pipelines.manager import PipelineManager  # noqa: E402
from shapeworld.evaluate import evaluation_cases, pipeline_generator, score  # noqa: E402

TARGETS = {"colour": 0.95, "shape": 0.90, "size": 0.90, "position": 0.85, "background": 0.95}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--captions", type=int, default=240)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0, 3.0, 5.0, 7.5])
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    manager = PipelineManager(Registry(), device="cpu", dtype="float32")
    pipe = manager.pipeline("shapes", "txt2img")
    preset = manager.registry.get("shapes")
    pipe.scheduler = manager.scheduler(pipe, preset.scheduler)
    cases = evaluation_cases(args.captions)
    rows = {}
    for guidance in args.guidance:
        start = time.perf_counter()
        result = score(pipeline_generator(pipe, preset.steps, guidance), cases, range(args.seeds))
        seconds = time.perf_counter() - start
        rows[guidance] = result
        cells = "  ".join(f"{k} {v:.3f}" for k, v in result.items())
        print(f"guidance {guidance:>4}: {cells}   ({seconds / (len(cases) * args.seeds):.3f} s/image batched)", flush=True)
    print("targets:       " + "  ".join(f"{k} {v:.2f}" for k, v in TARGETS.items()))
    if args.out:
        args.out.write_text(json.dumps({str(k): v for k, v in rows.items()}, indent=2))


if __name__ == "__main__":
    main()
