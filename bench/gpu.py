"""GPU speed on the SD 1.5 architecture (random weights): plain diffusers fp16 eager vs Atelier's path.

    python bench/gpu.py                      # 512², 30 steps, batch 1, on the first CUDA device
    python bench/gpu.py --no-compile         # Atelier's path without torch.compile

Both run on the same card in one process: plain first, then the same modules handed to Atelier's
manager (channels-last, fused QKV, regional torch.compile) and driven through the Studio, jobs and
previews included. Prints seconds per image, the ratio, the compile warm-up and peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.architectures import random_pipeline  # noqa: E402
from pipelines import Registry, Settings, Studio, Txt2ImgRequest  # noqa: E402
from pipelines.manager import PipelineManager  # noqa: E402
from pipelines.registry import SD15_LATENT_RGB, ModelPreset  # noqa: E402

PROMPT = "a large red circle at the top left on a white background"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, runs: int, device: str) -> list[float]:
    out = []
    for _ in range(runs):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - start)
    return out


def peak_gb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    dtype = torch.float16 if args.device.startswith("cuda") else torch.float32
    pipe = random_pipeline("sd15", dtype, args.device)
    pipe.set_progress_bar_config(disable=True)

    # 1. Plain diffusers, fp16, eager.
    def plain():
        pipe(PROMPT, height=args.size, width=args.size, num_inference_steps=args.steps, guidance_scale=7.5,
             generator=torch.Generator("cpu").manual_seed(0))

    plain()
    reset_peak(args.device)
    plain_times = timed(plain, args.runs, args.device)
    plain_peak = peak_gb(args.device)

    # 2. The same modules through Atelier: manager (prepares the model), studio, job, previews.
    preset = ModelPreset(name="sd15-random", label="SD 1.5 (random weights)", source="random", family="sd15",
                         width=args.size, height=args.size, min_size=64, latent_rgb=SD15_LATENT_RGB, variant=None)
    manager = PipelineManager(Registry((preset,)), device=args.device, dtype=str(dtype).removeprefix("torch."),
                              compile=args.compile, loader=lambda *a: pipe)
    studio = Studio(manager, Settings(outputs=""))
    request = Txt2ImgRequest(model=preset.name, prompt=PROMPT, seed=0, steps=args.steps, width=args.size,
                             height=args.size, guidance_scale=7.5, scheduler="Euler a")
    start = time.perf_counter()
    studio.txt2img(request).result()
    warmup = time.perf_counter() - start
    reset_peak(args.device)
    atelier_times = timed(lambda: studio.txt2img(request).result(), args.runs, args.device)
    atelier_peak = peak_gb(args.device)

    plain_s, atelier_s = statistics.median(plain_times), statistics.median(atelier_times)
    result = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "size": args.size,
        "steps": args.steps,
        "compile": args.compile,
        "plain_s_per_image": round(plain_s, 3),
        "atelier_s_per_image": round(atelier_s, 3),
        "speedup": round(plain_s / atelier_s, 3),
        "atelier_first_call_s": round(warmup, 1),
        "plain_peak_gb": round(plain_peak, 2),
        "atelier_peak_gb": round(atelier_peak, 2),
        "plain_runs": [round(t, 3) for t in plain_times],
        "atelier_runs": [round(t, 3) for t in atelier_times],
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
