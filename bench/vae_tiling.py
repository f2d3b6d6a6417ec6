"""Decoding large images tile by tile: peak memory and time against decoding them whole.

    python bench/vae_tiling.py                  # SD 1.5 autoencoder, random weights, fp32, CPU: 1024² and 1536²
    python bench/vae_tiling.py --sizes 768      # a quicker look

Each case runs in a fresh process, so its peak resident memory (ru_maxrss) is its own; the figure is the
peak minus the memory held before decoding (weights, latents). `--vae-tiling-pixels` decides which
requests the Studio decodes this way (default: above 1024 × 1024).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def one(size: int, tiled: bool) -> dict:
    import psutil
    import torch
    from diffusers import AutoencoderKL

    from bench.architectures import VAE

    torch.manual_seed(0)
    vae = AutoencoderKL(**VAE, scaling_factor=0.18215).eval()
    if tiled:
        vae.enable_tiling()
    latents = torch.randn(1, 4, size // 8, size // 8)
    held = psutil.Process().memory_info().rss
    start = time.perf_counter()
    with torch.no_grad():
        image = vae.decode(latents).sample
    seconds = time.perf_counter() - start
    assert image.shape[-2:] == (size, size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    return {"size": size, "tiled": tiled, "seconds": round(seconds, 2), "peak_added_gb": round((peak - held) / 2**30, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 1536])
    p.add_argument("--one", nargs=2, metavar=("SIZE", "TILED"), help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1] == "1")))
        return
    rows = []
    for size in args.sizes:
        pair = {}
        for tiled in (False, True):
            out = subprocess.run([sys.executable, __file__, "--one", str(size), str(int(tiled))], capture_output=True,
                                 text=True, check=True).stdout
            pair[tiled] = json.loads(out.strip().splitlines()[-1])
        row = {
            "size": size,
            "whole_s": pair[False]["seconds"],
            "tiled_s": pair[True]["seconds"],
            "whole_peak_gb": pair[False]["peak_added_gb"],
            "tiled_peak_gb": pair[True]["peak_added_gb"],
            "tiled_over_whole_memory": round(pair[True]["peak_added_gb"] / pair[False]["peak_added_gb"], 3),
            "tiled_over_whole_time": round(pair[True]["seconds"] / pair[False]["seconds"], 3),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
