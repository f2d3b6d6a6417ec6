"""Score a text-to-image generator on the shape world with the judge.

    python -m shapeworld.evaluate assets/shapes-model --captions 200 --seeds 2

`score` takes any `generate(captions, seeds) -> list of RGB arrays`, so the quality benchmark can send the
same captions through Atelier's own Text to image path.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .judge import ATTRIBUTES, Reading, judge
from .world import BACKGROUNDS, COLOURS, POSITIONS, SHAPES, Caption, Scene, caption_for, scene_for

Generate = Callable[[list[str], list[int]], Sequence[np.ndarray]]


@dataclass(frozen=True)
class Case:
    scene: Scene
    caption: Caption


def evaluation_cases(n: int, seed: int = 1234) -> list[Case]:
    """`n` captions that cycle through every colour × shape and state size, position and background
    often enough for each attribute to be scored on a large share of them."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        colour = list(COLOURS)[i % len(COLOURS)]
        shape = SHAPES[(i // len(COLOURS)) % len(SHAPES)]
        size = str(rng.choice(["small", "large"]))
        scene = scene_for(rng, colour, shape, size, str(rng.choice(list(POSITIONS))), str(rng.choice(list(BACKGROUNDS))))
        cases.append(Case(scene, caption_for(scene, rng, keep_p=0.8)))
    return cases


def agreement(reading: Reading, case: Case) -> dict[str, bool]:
    c, s = case.caption, case.scene
    out = {"colour": reading.colour == s.colour, "shape": reading.shape == s.shape}
    if c.says_size:
        out["size"] = reading.size == s.size
    if c.says_position:
        out["position"] = reading.position == s.position
    if c.says_background:
        out["background"] = reading.background == s.background
    return out


def score(generate: Generate, cases: list[Case], seeds: Sequence[int], batch: int = 32) -> dict[str, float]:
    """Per-attribute accuracy over every case × seed (only attributes the caption states count)."""
    hits = {a: [] for a in ATTRIBUTES}
    jobs = [(case, seed) for seed in seeds for case in cases]
    for start in range(0, len(jobs), batch):
        chunk = jobs[start : start + batch]
        images = generate([c.caption.text for c, _ in chunk], [s for _, s in chunk])
        for (case, _), image in zip(chunk, images):
            for attribute, ok in agreement(judge(np.asarray(image)), case).items():
                hits[attribute].append(ok)
    return {a: float(np.mean(v)) for a, v in hits.items() if v}


def pipeline_generator(pipe, steps: int = 20, guidance: float = 5.0) -> Generate:
    """A `Generate` over a plain diffusers text-to-image pipeline (for training runs)."""
    import torch

    def generate(captions: list[str], seeds: list[int]) -> list[np.ndarray]:
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        out = pipe(captions, num_inference_steps=steps, guidance_scale=guidance, generator=generators, output_type="np")
        return [(img * 255).round().astype(np.uint8) for img in out.images]

    return generate


def main() -> None:
    import torch
    from diffusers import StableDiffusionPipeline

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--captions", type=int, default=200)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, nargs="+", default=[5.0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    pipe = StableDiffusionPipeline.from_pretrained(args.model, dtype=torch.float32).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    cases = evaluation_cases(args.captions)
    for guidance in args.guidance:
        batch = 128 if args.device.startswith("cuda") else 32
        result = score(pipeline_generator(pipe, args.steps, guidance), cases, range(args.seeds), batch)
        print(f"{args.model} guidance {guidance}: " + ", ".join(f"{k} {v:.3f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
