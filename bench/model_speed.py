"""CPU time per image of two versions of the embedded model, side by side in one process.

    git archive <old commit> assets/shapes-model | tar x -C /tmp/old
    python bench/model_speed.py /tmp/old/assets/shapes-model assets/shapes-model

One 64×64 image per call, 20 steps, guidance 5, each model's own scheduler, calls alternating between
the two so that a busy moment costs both alike; the median of --rounds calls each after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline


def seconds_per_image(pipe, seed: int) -> float:
    start = time.perf_counter()
    pipe("a large red circle at the top left on a white background", num_inference_steps=20, guidance_scale=5.0,
         height=64, width=64, generator=torch.Generator().manual_seed(seed))
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    pipes = {}
    for name in ("before", "after"):
        pipes[name] = StableDiffusionPipeline.from_pretrained(getattr(args, name), dtype=torch.float32)
        pipes[name].set_progress_bar_config(disable=True)
        seconds_per_image(pipes[name], 0)  # warm-up
    times = {name: [] for name in pipes}
    for i in range(args.rounds):
        for name, pipe in pipes.items():
            times[name].append(seconds_per_image(pipe, i))
    median = {name: statistics.median(t) for name, t in times.items()}
    print(json.dumps({"seconds_per_image": median, "threads": torch.get_num_threads(),
                      "ratio_after_over_before": round(median["after"] / median["before"], 3)}))


if __name__ == "__main__":
    main()
