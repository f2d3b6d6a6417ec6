"""Morph on the embedded model: batched frames vs one by one, and even pacing vs uniform steps.

    python bench/morph.py            # 16 frames, seeds 0-2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import MorphRequest, Registry, Txt2ImgRequest  # noqa: E402
from pipelines.device.local import local_studio  # noqa: E402
from pipelines.device.manager import PipelineManager  # noqa: E402

A, B = "a red circle on a white background", "a blue square on a black background"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    studio = local_studio(PipelineManager(Registry(), device="cpu", dtype="float32"))
    common = dict(model="shapes", prompt=A, prompt_b=B, num_frames=args.frames, width=64, height=64, scheduler="Euler")
    studio.morph(MorphRequest(**common, seed=0, even_pacing=False)).result()  # warm-up
    batched, single, uniform, even = [], [], [], []
    for seed in range(args.seeds):
        start = time.perf_counter()
        result = studio.morph(MorphRequest(**common, seed=seed, even_pacing=False)).result()
        batched.append(time.perf_counter() - start)
        uniform.append(result.recipes[0].settings["spacing"]["final"])
        # The same frames rendered one call each, as a script around Text to image would.
        start = time.perf_counter()
        for _ in range(args.frames):
            studio.txt2img(Txt2ImgRequest(model="shapes", prompt=A, seed=seed, width=64, height=64, scheduler="Euler")).result()
        single.append(time.perf_counter() - start)
        even.append(studio.morph(MorphRequest(**common, seed=seed, even_pacing=True)).result().recipes[0].settings["spacing"]["final"])
    result = {
        "frames": args.frames,
        "batched_s": round(statistics.median(batched), 2),
        "one_by_one_s": round(statistics.median(single), 2),
        "batched_over_one_by_one": round(statistics.median(batched) / statistics.median(single), 3),
        "spacing_uniform_max_over_mean": [round(x, 2) for x in uniform],
        "spacing_even_max_over_mean": [round(x, 2) for x in even],
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
