"""Upscaling past one tile: peak memory against the size of the result, through a ×4 Stable Diffusion stage.

    python bench/upscale_memory.py                     # results of 512², 1024², 2048²
    python bench/upscale_memory.py --sizes 512 4096    # 4096² is 81 tiles: minutes on two cores

The stage is Stability's ×4 upscaler's architecture, tiny and with random weights (tests/conftest.py): what
is measured is what the tiles cost around the stage, which does not depend on the weights. Each size runs
in a fresh process, so its peak resident memory (ru_maxrss) is its own; the figure is that peak less the
memory held before the run (weights, the small picture) and less the result's own bytes (PIL keeps an RGB
pixel in 4), which the person asked for. A 512² result is one tile: the stage's work alone. Flat means the
larger results cost no more beyond their own pixels: the ratio largest / smallest near 1.

Children run with `MALLOC_MMAP_THRESHOLD_=65536`: each tile's buffers, freed, then go back to the system
instead of staying in glibc's heap, so the peak shows what is held rather than how fragmented the heap got
over many tiles (`--default-malloc` measures that too).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MB = 2**20


def one(stage: Path, size: int) -> dict:
    """Upscale a size/4 picture ×4 through the stage in this process; what it held at its peak."""
    import numpy as np
    import psutil
    import torch
    from diffusers import StableDiffusionUpscalePipeline
    from PIL import Image

    from pipelines.device.upscaling import STAGE_TILE, tile_count, upscale
    from pipelines.front.runner import never
    from pipelines.tasks.upscale import UpscaleRequest

    torch.set_num_threads(1)  # the machine is shared: one core, the same for every size
    pipe = StableDiffusionUpscalePipeline.from_pretrained(stage, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    side = size // 4
    x, y = np.meshgrid(np.linspace(0, 255, side), np.linspace(0, 255, side))
    image = Image.fromarray(np.stack([x, y, 255 - x], -1).astype(np.uint8))
    request = UpscaleRequest(model="bench", prompt="a gradient", image=image, scale=4, steps=1, new_detail=0.1)
    held = psutil.Process().memory_info().rss
    start = time.perf_counter()
    with torch.no_grad():
        result = upscale(pipe, request, 0, None, never)
    seconds = time.perf_counter() - start
    assert result.size == (size, size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    beyond = peak - held - size * size * 4
    return {"size": size, "tiles": tile_count(image.size, STAGE_TILE[type(pipe)]), "seconds": round(seconds, 1),
            "peak_added_mb": round((peak - held) / MB, 1), "result_mb": round(size * size * 4 / MB, 1),
            "beyond_result_mb": round(beyond / MB, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    p.add_argument("--default-malloc", action="store_true", help="leave glibc's heap settings as they are")
    p.add_argument("--one", nargs=2, metavar=("STAGE", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.one[0]), int(args.one[1]))))
        return

    from tests.conftest import build_tiny_x4_upscaler

    with tempfile.TemporaryDirectory() as folder:
        stage = build_tiny_x4_upscaler(Path(folder))
        rows = []
        env = {**os.environ, **({} if args.default_malloc else {"MALLOC_MMAP_THRESHOLD_": "65536"})}
        for size in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--one", str(stage), str(size)],
                                 capture_output=True, text=True, check=True, env=env).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    smallest, largest = rows[0]["beyond_result_mb"], rows[-1]["beyond_result_mb"]
    print(f"peak beyond the result, {rows[-1]['size']}² / {rows[0]['size']}²: {largest / smallest:.2f}×")


if __name__ == "__main__":
    main()
