"""What Content Credentials cost a 512² result: saving it as Atelier always has (the PNG with its recipe)
against saving it signed, side by side in one run; and reading a signed file back.

    python bench/credentials.py                       # 30 rounds, prints each figure beside its target
    python bench/credentials.py --out bench/results/credentials.json

A generated picture is smooth with fine detail, so the stand-in is gradients, shapes and mild noise (its
PNG is about as large as a real result's). "Edited" signs a variation of a picture in the Library (its
signed PNG is the ingredient); "uploaded" one of a picture from elsewhere, which is encoded for its
ingredient first (once per run in the studio; here once per image, the dearest case).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from pipelines import VariationsRequest  # noqa: E402
from pipelines.front.credentials import Credentials, Identity, Origin, read  # noqa: E402
from pipelines.front.recipe import Recipe, image_id, png_bytes  # noqa: E402

TARGET_MS = 50.0  # most signing may add to a 512² result


def picture(seed: int, side: int = 512) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    base = np.stack([x, y, (x + y) / 2], axis=-1) * 200 + rng.normal(0, 4, (side, side, 3))
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.integers(0, side - 120, 2)
        draw.ellipse((x0, y0, x0 + 120, y0 + 120), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return image


def recipe_of(image: Image.Image, task: str, parent: str | None = None) -> Recipe:
    return Recipe(task=task, model="shapes", prompt="a red circle in the centre", seed=1, steps=20,
                  guidance_scale=5.0, scheduler="Euler a", width=image.width, height=image.height,
                  parent=parent, image_id=image_id(image))


def interleaved(cases: dict, rounds: int) -> dict[str, float]:
    """Median milliseconds of each case, the cases taking turns within every round, so a burst of load from
    elsewhere on the machine falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, work in cases.items():
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as keys:
        credentials = Credentials(Identity.local(keys))
        made = picture(1)
        made_recipe = recipe_of(made, "txt2img")
        parent_png = credentials.sign(png_bytes(made, made_recipe), "image/png", made_recipe)
        edit = picture(2)
        edit_recipe = recipe_of(edit, "variations", parent=made_recipe.image_id)

        request = VariationsRequest(model="shapes", image=made, parent=made_recipe.image_id)
        upload_recipe = recipe_of(edit, "variations")
        upload = VariationsRequest(model="shapes", image=made)

        plain = png_bytes(edit, edit_recipe)  # what saving costs without credentials: the same for every case
        cases = {
            "plain_save": lambda: png_bytes(made, made_recipe),
            # Signing what was encoded: exactly what credentials add to saving.
            "created": lambda: credentials.sign(plain, "image/png", made_recipe),
            "edited": lambda: credentials.sign(plain, "image/png", edit_recipe, Origin.of(request), parent=parent_png),
            "uploaded": lambda: credentials.sign(plain, "image/png", upload_recipe, Origin.of(upload)),
            "read": lambda: read(parent_png),
        }
        interleaved(cases, 3)  # the C2PA library's first calls load and warm it up
        figures = interleaved(cases, args.rounds)
    for kind in ("created", "edited", "uploaded"):
        ms = figures[kind]
        print(f"signing adds {ms:5.1f} ms to a 512² {kind} result (saving it unsigned: {figures['plain_save']:.1f} ms, "
              f"×{(figures['plain_save'] + ms) / figures['plain_save']:.2f} signed) — "
              f"{'within' if ms <= TARGET_MS else 'OVER'} the {TARGET_MS:.0f} ms target")
    print(f"reading and validating a signed 512² PNG: {figures['read']:.1f} ms")
    if args.out:
        args.out.write_text(json.dumps({"milliseconds": figures, "png_bytes": len(parent_png), "target_ms": TARGET_MS, "rounds": args.rounds},
                                       indent=2) + "\n")


if __name__ == "__main__":
    main()
