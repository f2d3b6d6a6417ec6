"""One copy of the weights for every tab, and what the service layers cost.

    python bench/residency.py sharing      # SD 1.5 architecture, fp32, CPU: memory 4 tabs vs 1 vs 4 copies
    python bench/residency.py overhead     # embedded model: Studio vs bare diffusers, and the HTTP API

sharing: process memory (RSS) after Text to image alone, after all four tabs have run once through
the manager, and with four separately loaded pipelines; plus the time the first call of a new tab adds.
overhead: seconds per image through the Studio (job thread, previews, recipes) against the bare
pipeline call with the same weights and settings, and the fixed cost added by gradio_client over HTTP.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from pipelines import (  # noqa: E402
    InpaintRequest,
    MorphRequest,
    Registry,
    Txt2ImgRequest,
    VariationsRequest,
)
from pipelines.device.local import local_studio  # noqa: E402
from pipelines.device.manager import PipelineManager, module_bytes  # noqa: E402
from pipelines.device.sampling import fresh_scheduler  # noqa: E402
from pipelines.front.registry import SD15_LATENT_RGB, ModelPreset  # noqa: E402


def rss_gb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**30


def sharing(size: int, steps: int) -> dict:
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image

    from bench.architectures import random_pipeline

    folder = Path(tempfile.mkdtemp(prefix="sd15-random-"))
    random_pipeline("sd15").save_pretrained(folder, safe_serialization=True)
    gc.collect()
    baseline = rss_gb()
    preset = ModelPreset(name="sd15-random", label="SD 1.5 architecture", source=str(folder), family="sd15",
                         width=size, height=size, min_size=64, steps=steps, variant=None, latent_rgb=SD15_LATENT_RGB)
    manager = PipelineManager(Registry((preset,)), device="cpu", dtype="float32")
    studio = local_studio(manager)
    common = dict(model=preset.name, prompt="a red circle", steps=steps, seed=0)
    studio.txt2img(Txt2ImgRequest(**common, width=size, height=size)).result()
    after_one = rss_gb()
    image = Image.new("RGB", (size, size), (200, 40, 40))
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (size // 4, size // 4, size // 2, size // 2))
    first_call = {}
    for task in ("img2img", "inpaint"):
        start = time.perf_counter()
        manager.pipeline(preset.name, task)
        first_call[task] = round((time.perf_counter() - start) * 1000, 1)
    studio.variations(VariationsRequest(**common, image=image, similarity=0.5)).result()
    studio.morph(MorphRequest(**common, prompt_b="a blue circle", num_frames=2, width=size, height=size)).result()
    studio.inpaint(InpaintRequest(**common, image=image, mask=mask)).result()
    after_four = rss_gb()
    shared_weights = module_bytes(*(manager.pipeline(preset.name, t) for t in ("txt2img", "img2img", "inpaint")))
    del studio, manager
    gc.collect()
    # Four separately loaded pipelines, as tools that load one per tab do, each run once like the tabs.
    run = dict(prompt="a red circle", num_inference_steps=steps, generator=torch.Generator("cpu").manual_seed(0))
    separate = []
    for cls, kwargs in (
        (AutoPipelineForText2Image, dict(width=size, height=size)),
        (AutoPipelineForImage2Image, dict(image=image)),
        (AutoPipelineForText2Image, dict(width=size, height=size)),  # morph
        (AutoPipelineForInpainting, dict(image=image, mask_image=mask)),
    ):
        pipe = cls.from_pretrained(folder, dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        pipe(**run, **kwargs)
        separate.append(pipe)
    after_separate = rss_gb()
    separate_weights = module_bytes(*separate)
    del separate
    one, four, copies = after_one - baseline, after_four - baseline, after_separate - baseline
    return {
        "baseline_gb": round(baseline, 2),
        "txt2img_alone_gb": round(one, 2),
        "four_tabs_gb": round(four, 2),
        "four_tabs_over_one": round(four / one, 3),
        "weights_shared_gb": round(shared_weights / 2**30, 2),
        "weights_separate_gb": round(separate_weights / 2**30, 2),
        "four_separate_pipelines_gb": round(copies, 2),
        "separate_over_shared": round(copies / four, 2),
        "first_call_of_a_new_tab_ms": first_call,
    }


def overhead(runs: int, http: bool) -> dict:
    manager = PipelineManager(Registry(), device="cpu", dtype="float32")
    studio = local_studio(manager)
    pipe = manager.pipeline("shapes", "txt2img")
    request = Txt2ImgRequest(model="shapes", prompt="a large blue triangle on a white background", seed=0, width=64,
                             height=64, steps=20, guidance_scale=5.0, scheduler="Euler a")

    def bare():
        pipe.scheduler = fresh_scheduler("Euler a", pipe.scheduler.config)
        pipe(request.prompt, width=64, height=64, num_inference_steps=20, guidance_scale=5.0,
             generator=torch.Generator("cpu").manual_seed(0))

    def through_studio():
        studio.txt2img(request).result()

    bare(), through_studio()  # warm-up
    bare_t, studio_t = [], []
    for _ in range(runs):  # interleaved, so drift in machine load hits both alike
        for fn, out in ((bare, bare_t), (through_studio, studio_t)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    result = {
        "bare_s": round(statistics.median(bare_t), 4),
        "studio_s": round(statistics.median(studio_t), 4),
        "studio_over_bare": round(statistics.median(studio_t) / statistics.median(bare_t), 3),
    }
    if http:
        result.update(http_overhead(runs, statistics.median(studio_t)))
    return result


def http_overhead(runs: int, studio_s: float) -> dict:
    from gradio_client import Client

    import app

    demo, studio, url = app.serve_in_background(["--outputs", ""])
    client = Client(url, verbose=False)
    kwargs = dict(prompt="a large blue triangle on a white background", negative_prompt="", seed=0, steps=20,
                  guidance_scale=5, width=64, height=64, num_images=1, scheduler="Euler a", model="shapes",
                  api_name="/txt2img")
    client.predict(**kwargs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        client.predict(**kwargs)
        times.append(time.perf_counter() - start)
    demo.close()
    studio.close()
    median = statistics.median(times)
    return {"http_s": round(median, 4), "http_fixed_cost_s": round(median - studio_s, 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["sharing", "overhead"])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--no-http", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)
    result = sharing(args.size, args.steps) if args.what == "sharing" else overhead(args.runs, not args.no_http)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
