"""The embedded model's ×4 stage against the truth: quality, crispness and CPU cost, in one run.

    python bench/upscale.py --scenes 48 --runs 5 --out bench/results

shapeworld draws every held-out scene at 64² (the input) and at 256² (the truth). For each scene:
PSNR against the truth for the stage and for bicubic ×4; the judge's reading of the ×4 result against its
reading of the 64² input (background, and every figure's colour, shape and place); and crispness, the
share of pixels far from every flat colour of the scene (blur leaves a band of in-between colours
along each edge), as a ratio to bicubic's. The cost is one 64→256 upscale against the 64² picture's own
generation at the model's defaults, both through the Studio in this process, interleaved, medians.

    python bench/upscale.py --scenes 16 --runs 0 --stage runs/upscaler   # a training run's checkpoint instead
    python bench/upscale.py --scenes 32 --runs 0 --seed 7 --set steps=4   # choose settings on other scenes
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines import Registry, Txt2ImgRequest, UpscaleRequest  # noqa: E402
from pipelines.device.local import local_studio  # noqa: E402
from pipelines.device.manager import PipelineManager  # noqa: E402
from shapeworld.judge import read_scene  # noqa: E402
from shapeworld.world import BACKGROUNDS, COLOURS, caption_for, draw, sample_scene  # noqa: E402

MODEL = "shapes"
FAR = 48  # RGB distance from every flat colour of the scene that makes a pixel "in between"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / max(np.mean((a.astype(float) - b.astype(float)) ** 2), 1e-10)))


def in_between(image: np.ndarray, scene) -> float:
    """The share of pixels farther than FAR from every flat colour the scene has."""
    flat = np.array([BACKGROUNDS[scene.background], *(COLOURS[f.colour] for f in scene.figures)], float)
    distance = np.linalg.norm(image[..., None, :].astype(float) - flat, axis=-1).min(axis=-1)
    return float((distance > FAR).mean())


def readings(image: np.ndarray) -> tuple:
    scene = read_scene(image)
    return scene.background, sorted((f.colour, f.shape, f.position) for f in scene.figures)


HELD_OUT = 20261205  # training draws its scenes from seed 0, its checks from 987654


def quality(studio, scenes: int, dials: dict, seed: int = HELD_OUT) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(scenes):
        scene = sample_scene(rng)
        small, truth = draw(scene), draw(scene, size=256)
        caption = caption_for(scene, rng, 1.0, 1.0).text
        ours = np.asarray(studio.submit(UpscaleRequest(model=MODEL, image=Image.fromarray(small), prompt=caption,
                                                       seed=0, **dials)).result().images[0])
        bicubic = np.asarray(Image.fromarray(small).resize((256, 256), Image.Resampling.BICUBIC))
        rows.append(dict(
            figures=len(scene.figures), psnr=psnr(ours, truth), psnr_bicubic=psnr(bicubic, truth),
            same_reading=readings(ours) == readings(small), in_between=in_between(ours, scene),
            in_between_bicubic=in_between(bicubic, scene), in_between_truth=in_between(truth, scene),
        ))
    mean = lambda key, rows=rows: float(np.mean([r[key] for r in rows]))  # noqa: E731
    two = [r for r in rows if r["figures"] >= 2]
    return dict(
        scenes=scenes, psnr=mean("psnr"), psnr_bicubic=mean("psnr_bicubic"),
        psnr_gain_db=mean("psnr") - mean("psnr_bicubic"),
        same_reading=mean("same_reading"), same_reading_two_figures=float(np.mean([r["same_reading"] for r in two])) if two else None,
        in_between=mean("in_between"), in_between_bicubic=mean("in_between_bicubic"),
        in_between_truth=mean("in_between_truth"), crispness_ratio=mean("in_between") / mean("in_between_bicubic"),
    )


def cost(studio, runs: int, dials: dict) -> dict:
    base = Txt2ImgRequest(model=MODEL, prompt="a red circle and a blue square on a white background", width=64, height=64,
                          steps=studio.preset(MODEL).steps, guidance_scale=studio.preset(MODEL).guidance,
                          scheduler=studio.preset(MODEL).scheduler, seed=1)
    picture = studio.submit(base).result().images[0]
    upscale = UpscaleRequest(model=MODEL, image=picture, prompt=base.prompt, seed=1, **dials)
    studio.submit(upscale).result()  # warm both
    made, upscaled = [], []
    for _ in range(runs):
        for request, times in ((base, made), (upscale, upscaled)):
            start = time.perf_counter()
            studio.submit(request).result()
            times.append(time.perf_counter() - start)
    made_s, upscale_s = statistics.median(made), statistics.median(upscaled)
    return dict(image_s=made_s, upscale_s=upscale_s, cost_ratio=upscale_s / made_s, runs=runs)


def with_stage(registry: Registry, folder: Path) -> Registry:
    """The registry with the embedded model's ×4 stage loaded from `folder` (a checkpoint being trained)."""
    stage = replace(registry.get(MODEL).upscalers[0], source=str(folder.resolve()))
    presets = tuple(replace(p, upscalers=(stage,)) if p.name == MODEL else p for p in registry.presets)
    return replace(registry, presets=presets)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=48)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="the Upscale task's settings to measure instead of its defaults: guidance_scale=2 steps=3")
    parser.add_argument("--stage", type=Path, help="a stage folder to measure in place of the shipped one")
    parser.add_argument("--seed", type=int, default=HELD_OUT,
                        help="other scenes to choose settings on, so the held-out ones stay unseen until the report")
    args = parser.parse_args(argv)
    dials = {name: _value(value) for name, value in (item.split("=", 1) for item in args.set)}
    registry = with_stage(Registry(), args.stage) if args.stage else Registry()
    studio = local_studio(PipelineManager(registry, device="cpu", dtype="float32"))
    report = dict(date=str(date.today()), device="cpu", dials=dials, stage=str(args.stage or "shipped"), seed=args.seed,
                  **quality(studio, args.scenes, dials, args.seed),
                  **(cost(studio, args.runs, dials) if args.runs else {}))
    for key, value in report.items():
        print(f"{key:28} {value:.4f}" if isinstance(value, float) else f"{key:28} {value}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        suffix = "".join(f"-{k}={v}" for k, v in dials.items()).replace(" ", "_")
        (args.out / f"upscale-{report['date']}{suffix}.json").write_text(json.dumps(report, indent=2))
    return report


def _value(text: str):
    """A number where the text is one ("2", "0.1"), else the text ("Euler a")."""
    try:
        return json.loads(text)
    except ValueError:
        return text


if __name__ == "__main__":
    main()
