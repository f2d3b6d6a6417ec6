"""The similarity dial on the embedded model: mean distance between input and variation, per position.

    python bench/dial.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from pipelines import Registry, VariationsRequest  # noqa: E402
from pipelines.device.local import local_studio  # noqa: E402
from pipelines.device.manager import PipelineManager  # noqa: E402
from pipelines.tasks.variations import strength_for  # noqa: E402
from shapeworld.judge import judge  # noqa: E402
from shapeworld.world import COLOURS, SHAPES, draw, scene_for  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=6)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    studio = local_studio(PipelineManager(Registry(), device="cpu", dtype="float32"))
    rng = np.random.default_rng(0)
    sources = [draw(scene_for(rng, list(COLOURS)[i % 6], SHAPES[i % 3], "large", "center", "white")) for i in range(args.images)]
    rows = []
    for similarity in (1.0, 0.9, 0.75, 0.6, 0.5, 0.4, 0.25, 0.1, 0.0):
        distances, kept = [], []
        for source in sources:
            req = VariationsRequest(model="shapes", image=Image.fromarray(source), similarity=similarity, seed=0, num_images=args.seeds)
            for out in studio.variations(req).result().images:
                array = np.asarray(out.convert("RGB")).astype(float)
                distances.append(float(np.abs(array - source).mean()))
                a, b = judge(source), judge(array.astype(np.uint8))
                kept.append(a.colour == b.colour and a.shape == b.shape)
        rows.append({"similarity": similarity, "strength": round(strength_for(similarity, "shapes"), 3),
                     "mean_abs_distance": round(float(np.mean(distances)), 2), "colour_and_shape_kept": round(float(np.mean(kept)), 2)})
        print(rows[-1], flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
