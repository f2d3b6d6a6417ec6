"""One image as a person waits for it: over HTTP from `python app.py`, through the Studio, and bare.

    python bench/speed.py --runs 5

Starts `python app.py` exactly as a user does (its own process, default settings, results saved to
`outputs/` in a scratch folder), then times side by side, interleaved so drift in machine load hits all
three alike: the bare diffusers call on the embedded model, the same request through an in-process
`Studio`, and the same request over HTTP with gradio_client against the started app. Embedded model,
64², 20 steps, guidance 5, "Euler a". Prints the medians and the two ratios the targets are set on
(HTTP ≤ 1.15× the Studio, the Studio ≤ 1.05× bare). Run it on a quiet machine: anything else busy on the
cores shows up at once in a model this small.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "a large blue triangle on a white background"
SETTINGS = dict(seed=0, steps=20, guidance_scale=5.0, width=64, height=64, scheduler="Euler a")


def start_app(folder: Path) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free port, run from `folder` (so its outputs land there); returns once it serves."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--port", str(port)],
        cwd=folder, env=env, stdout=subprocess.PIPE, text=True,
    )
    for line in app.stdout:
        if line.startswith("Atelier is running at "):
            return app, line.split()[4]
    raise RuntimeError("app.py ended before it served")


def measure(runs: int) -> dict:
    import torch
    from gradio_client import Client

    from pipelines import Registry, Txt2ImgRequest
    from pipelines.device.local import local_studio
    from pipelines.device.manager import PipelineManager
    from pipelines.front.schedulers import fresh_scheduler

    manager = PipelineManager(Registry(), device="cpu", dtype="float32")
    studio = local_studio(manager)
    pipe = manager.pipeline("shapes", "txt2img")
    request = Txt2ImgRequest(model="shapes", prompt=PROMPT, **SETTINGS)

    def bare():
        pipe.scheduler = fresh_scheduler("Euler a", pipe.scheduler.config)
        pipe(PROMPT, width=64, height=64, num_inference_steps=20, guidance_scale=5.0,
             generator=torch.Generator("cpu").manual_seed(0))

    def in_process():
        studio.txt2img(request).result()

    with tempfile.TemporaryDirectory() as folder:
        app, url = start_app(Path(folder))
        try:
            client = Client(url, verbose=False)

            def http():
                client.predict(prompt=PROMPT, negative_prompt="", num_images=1, model="shapes",
                               api_name="/txt2img", **SETTINGS)

            paths = {"bare": bare, "studio": in_process, "http": http}
            times: dict[str, list[float]] = {name: [] for name in paths}
            for fn in paths.values():
                fn()  # warm-up: the model loads, caches fill
            for _ in range(runs):
                for name, fn in paths.items():
                    start = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - start)
            saved = len(list(Path(folder).rglob("*.png")))
        finally:
            app.terminate()
            app.wait(30)
    median = {name: statistics.median(t) for name, t in times.items()}
    return {
        **{f"{name}_s": round(m, 3) for name, m in median.items()},
        "http_over_studio": round(median["http"] / median["studio"], 3),
        "studio_over_bare": round(median["studio"] / median["bare"], 3),
        "runs": runs,
        "pngs_saved_by_the_app": saved,
        "all_s": {name: [round(x, 3) for x in t] for name, t in times.items()},
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    result = measure(args.runs)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
