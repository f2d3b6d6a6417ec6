"""Seams on the embedded model: the colour jump along the mask border with and without correction, on
mixed scenes and on issue 14's halo case (an orange square on white repainted as "a red circle", the
mask the square grown by 3 px), where the edge's words (clean / blended / shows) are counted too.

    python bench/seams.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from pipelines import InpaintRequest, Registry  # noqa: E402
from pipelines.device.local import local_studio  # noqa: E402
from pipelines.device.manager import PipelineManager  # noqa: E402
from pipelines.tasks.masks import grow  # noqa: E402
from shapeworld.world import BACKGROUNDS, draw, scene_for  # noqa: E402


def main() -> None:
    studio = local_studio(PipelineManager(Registry(), device="cpu", dtype="float32"))
    rng = np.random.default_rng(0)
    rows = {True: [], False: []}
    for i, background in enumerate(list(BACKGROUNDS) * 2):
        image = Image.fromarray(draw(scene_for(rng, "green", "square", "small", "top right", background)))
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, (8, 24, 40, 56))
        for correct in (True, False):
            req = InpaintRequest(model="shapes", prompt=f"a red circle on a {background} background", image=image,
                                 mask=mask, seed=i, num_images=4, padding=4, color_correction=correct)
            rows[correct] += [r.settings["seam"] for r in studio.inpaint(req).result().recipes]
    halo = {True: [], False: []}
    for seed in range(6):
        square = draw(scene_for(rng, "orange", "square", "large", None, "white"))
        mask = grow(np.where((square != 255).any(axis=2), 255, 0).astype(np.uint8), 3)
        for correct in (True, False):
            req = InpaintRequest(model="shapes", prompt="a red circle on a white background",
                                 image=Image.fromarray(square), mask=Image.fromarray(mask), seed=seed, num_images=2,
                                 color_correction=correct)
            halo[correct] += [(r.settings["seam"], r.settings["edge"]) for r in studio.inpaint(req).result().recipes]
    edges = lambda found: {e: [x for _, x in found].count(e) for e in ("clean", "blended", "visible")}  # noqa: E731
    result = {
        "halo_cases": len(halo[True]),
        "halo_seam_with_correction_mean": round(float(np.mean([s for s, _ in halo[True]])), 2),
        "halo_seam_without_correction_mean": round(float(np.mean([s for s, _ in halo[False]])), 2),
        "halo_edges_with_correction": edges(halo[True]),
        "halo_edges_without_correction": edges(halo[False]),
        "cases": len(rows[True]),
        "seam_with_correction_mean": round(float(np.mean(rows[True])), 2),
        "seam_without_correction_mean": round(float(np.mean(rows[False])), 2),
        "seam_with_correction_p90": round(float(np.percentile(rows[True], 90)), 2),
        "seam_without_correction_p90": round(float(np.percentile(rows[False], 90)), 2),
    }
    print(json.dumps(result, indent=2))
    Path("bench/results/seams.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
