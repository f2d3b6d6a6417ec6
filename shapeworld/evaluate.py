"""Score a generator on the shape world with the judge: one-figure captions, two-figure scenes, and
inpainting that adds a figure to a scene.

    python -m shapeworld.evaluate assets/shapes-model --captions 240 --scenes 200
    python -m shapeworld.evaluate assets/shapes-model --inpaint assets/shapes-model/inpainting --json scores.json

`score`, `score_scenes` and `score_inpaint` take plain callables, so the quality benchmark can send the
same cases through Atelier's own tabs.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .judge import ATTRIBUTES, Reading, SceneReading, judge, read_scene
from .world import (
    BACKGROUNDS,
    COLOURS,
    POSITIONS,
    SHAPES,
    Caption,
    Scene,
    apart,
    bounding_box,
    caption_for,
    draw,
    figure_for,
    figure_text,
    fit_figures,
    footprint,
    region_mask,
    scene_for,
    scene_text,
)

Generate = Callable[[list[str], list[int]], Sequence[np.ndarray]]
Inpaint = Callable[[list[np.ndarray], list[np.ndarray], list[str], list[int]], Sequence[np.ndarray]]


@dataclass(frozen=True)
class Case:
    scene: Scene
    caption: Caption


def evaluation_cases(n: int, seed: int = 1234) -> list[Case]:
    """`n` one-figure captions that cycle through every colour × shape and state size, position and
    background often enough for each attribute to be scored on a large share of them."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        colour = list(COLOURS)[i % len(COLOURS)]
        shape = SHAPES[(i // len(COLOURS)) % len(SHAPES)]
        size = str(rng.choice(["small", "large"]))
        scene = scene_for(rng, colour, shape, size, str(rng.choice(list(POSITIONS))), str(rng.choice(list(BACKGROUNDS))))
        cases.append(Case(scene, caption_for(scene, rng, keep_p=0.8)))
    return cases


def scene_cases(n: int, figures: int = 2, seed: int = 4321) -> list[Case]:
    """`n` captions of `figures` figures, each with its colour, shape and place said (no size), and
    the background: "a red triangle at the bottom left and a blue circle at the top right on a …"."""
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(n):
        places = rng.choice(list(POSITIONS), size=figures, replace=False)
        specs = [dict(colour=str(rng.choice(list(COLOURS))), shape=str(rng.choice(SHAPES)), position=str(p)) for p in places]
        scene = Scene(fit_figures(rng, specs), str(rng.choice(list(BACKGROUNDS))))
        text = scene_text([figure_text(f.colour, f.shape, None, f.position) for f in scene.figures], scene.background)
        cases.append(Case(scene, Caption(text, (False,) * figures, (True,) * figures, True)))
    return cases


def agreement(reading: Reading, case: Case) -> dict[str, bool]:
    """Which stated attributes of a one-figure case the reading of its figure gets right."""
    c, f = case.caption, case.scene.figures[0]
    out = {"colour": reading.colour == f.colour, "shape": reading.shape == f.shape}
    if c.says_size[0]:
        out["size"] = reading.size == f.size
    if c.says_position[0]:
        out["position"] = reading.position == f.position
    if c.says_background:
        out["background"] = reading.background == case.scene.background
    return out


def scene_agreement(reading: SceneReading, case: Case) -> bool:
    """Every figure right — colour, shape, and place where said — and nothing extra."""
    wanted = case.scene.figures
    if len(reading.figures) != len(wanted):
        return False

    def fits(seen: Reading, i: int) -> bool:
        f = wanted[i]
        return (
            seen.colour == f.colour
            and seen.shape == f.shape
            and (not case.caption.says_position[i] or seen.position == f.position)
            and (not case.caption.says_size[i] or seen.size == f.size)
        )

    return any(all(fits(seen, i) for seen, i in zip(reading.figures, order)) for order in itertools.permutations(range(len(wanted))))


def _batched(jobs: list, batch: int, run: Callable[[list], Sequence[np.ndarray]]):
    for start in range(0, len(jobs), batch):
        chunk = jobs[start : start + batch]
        yield from zip(chunk, run(chunk))


def score(generate: Generate, cases: list[Case], seeds: Sequence[int], batch: int = 32) -> dict[str, float]:
    """Per-attribute accuracy of one-figure cases over every case × seed (only stated attributes count)."""
    hits = {a: [] for a in ATTRIBUTES}
    jobs = [(case, seed) for seed in seeds for case in cases]
    for (case, _), image in _batched(jobs, batch, lambda chunk: generate([c.caption.text for c, _ in chunk], [s for _, s in chunk])):
        for attribute, ok in agreement(judge(np.asarray(image)), case).items():
            hits[attribute].append(ok)
    return {a: float(np.mean(v)) for a, v in hits.items() if v}


def score_scenes(generate: Generate, cases: list[Case], seeds: Sequence[int], batch: int = 32) -> float:
    """Share of scene pictures with every figure right and nothing extra."""
    jobs = [(case, seed) for seed in seeds for case in cases]
    hits = [
        scene_agreement(read_scene(np.asarray(image)), case)
        for (case, _), image in _batched(jobs, batch, lambda chunk: generate([c.caption.text for c, _ in chunk], [s for _, s in chunk]))
    ]
    return float(np.mean(hits))


@dataclass(frozen=True)
class InpaintCase:
    image: np.ndarray  # the scene before: one or two figures
    mask: np.ndarray  # uint8 0/255 over an empty stretch of background
    prompt: str  # what goes there: "a red circle"
    colour: str
    shape: str
    background: str


def inpaint_cases(n: int, seed: int = 99) -> list[InpaintCase]:
    """`n` scenes of one or two figures with an empty named place masked and a figure asked for there."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        scene = Scene(fit_figures(rng, [dict() for _ in range(int(rng.integers(1, 3)))]), str(rng.choice(list(BACKGROUNDS))))
        free = [p for p in POSITIONS if p not in {f.position for f in scene.figures}]
        target = figure_for(rng, size="medium", position=str(rng.choice(free)))
        if not apart([*scene.figures, target]):
            continue
        others = np.any([footprint(f) for f in scene.figures], axis=0)
        keep_out = cv2.dilate(others.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        mask = region_mask(rng, bounding_box(footprint(target)), keep_out)
        prompt = figure_text(target.colour, target.shape)
        cases.append(InpaintCase(draw(scene), mask, prompt, target.colour, target.shape, scene.background))
    return cases


def masked_region(image: np.ndarray, case: InpaintCase) -> np.ndarray:
    """The picture with everything outside the mask painted over in the background colour."""
    out = np.asarray(image)[..., :3].copy()
    out[case.mask == 0] = BACKGROUNDS[case.background]
    return out


def score_inpaint(inpaint: Inpaint, cases: list[InpaintCase], seeds: Sequence[int], batch: int = 32) -> dict[str, float]:
    """Share of results whose masked region holds the asked colour and shape (and each alone), and
    whether every pixel outside the mask is unchanged."""
    jobs = [(case, seed) for seed in seeds for case in cases]
    colour, shape, both, kept = [], [], [], []
    run = lambda chunk: inpaint([c.image for c, _ in chunk], [c.mask for c, _ in chunk], [c.prompt for c, _ in chunk], [s for _, s in chunk])  # noqa: E731
    for (case, _), image in _batched(jobs, batch, run):
        reading = judge(masked_region(image, case))
        colour.append(reading.colour == case.colour)
        shape.append(reading.shape == case.shape)
        both.append(colour[-1] and shape[-1])
        kept.append(bool((np.asarray(image)[..., :3][case.mask == 0] == case.image[case.mask == 0]).all()))
    return {"colour": float(np.mean(colour)), "shape": float(np.mean(shape)), "both": float(np.mean(both)),
            "outside_unchanged": float(np.mean(kept))}


def pipeline_generator(pipe, steps: int = 20, guidance: float = 5.0) -> Generate:
    """A `Generate` over a plain diffusers text-to-image pipeline (for training runs)."""
    import torch

    def generate(captions: list[str], seeds: list[int]) -> list[np.ndarray]:
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        out = pipe(captions, num_inference_steps=steps, guidance_scale=guidance, generator=generators, output_type="np")
        return [(img * 255).round().astype(np.uint8) for img in out.images]

    return generate


def pipeline_inpainter(pipe, steps: int = 20, guidance: float = 5.0) -> Inpaint:
    """An `Inpaint` over a plain diffusers inpainting pipeline, composited so only the mask changes."""
    import torch
    from PIL import Image

    def inpaint(images, masks, prompts, seeds) -> list[np.ndarray]:
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        out = pipe(
            prompts, image=[Image.fromarray(i) for i in images], mask_image=[Image.fromarray(m) for m in masks],
            height=64, width=64, strength=1.0, num_inference_steps=steps, guidance_scale=guidance,
            generator=generators, output_type="np",
        )
        painted = [(img * 255).round().astype(np.uint8) for img in out.images]
        return [np.where(m[..., None] > 0, p, i) for p, i, m in zip(painted, images, masks)]

    return inpaint


def evaluate_folder(model: Path, inpaint: Path | None, captions: int, scenes: int, seeds: int,
                    guidance: float, device: str) -> dict:
    """All three scores of a trained model folder (and its inpainting variant), as plain data."""
    import torch
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, dtype=torch.float32).to(device)
    pipe.set_progress_bar_config(disable=True)
    batch = 128 if device.startswith("cuda") else 32
    generate = pipeline_generator(pipe, 20, guidance)
    out = {"model": str(model), "guidance": guidance,
           "single": score(generate, evaluation_cases(captions), range(seeds), batch),
           "two_figures": score_scenes(generate, scene_cases(scenes), range(seeds), batch)}
    if inpaint is not None:
        painter = StableDiffusionInpaintPipeline.from_pretrained(
            inpaint, vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer,
            safety_checker=None, requires_safety_checker=False, dtype=torch.float32).to(device)
        painter.set_progress_bar_config(disable=True)
        out["inpaint_add"] = score_inpaint(pipeline_inpainter(painter, 20, guidance), inpaint_cases(scenes), range(seeds), batch)
    return out


def main(argv: list[str] | None = None) -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path)
    p.add_argument("--inpaint", type=Path, help="the model's inpainting variant (a folder with a 9-channel U-Net)")
    p.add_argument("--captions", type=int, default=240, help="one-figure captions")
    p.add_argument("--scenes", type=int, default=200, help="two-figure captions, and inpainting cases")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--guidance", type=float, default=5.0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", type=Path, help="also write the scores here")
    args = p.parse_args(argv)
    result = evaluate_folder(args.model, args.inpaint, args.captions, args.scenes, args.seeds, args.guidance, args.device)
    print(json.dumps(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
