"""AUTOMATIC1111's /sdapi/v1/txt2img against the in-process Studio: what the adapter and HTTP add.

    python bench/sdapi.py --runs 5

Starts `python app.py` as a user does (its own process, results saved to `outputs/` in a scratch folder)
and times, interleaved so drift in machine load hits both alike: the request through an in-process
`Studio` that also saves into a Library, and the same settings posted to `/sdapi/v1/txt2img` with the
answer's base64 PNG decoded into pixels. Embedded model, 64², 20 steps, guidance 5, "Euler a", seed 0.
Prints the medians and their ratio (the target: ≤ 1.15×). Anything else busy on the cores shows up at
once in a model this small: say so beside any figure.
"""

from __future__ import annotations

import base64
import io
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.speed import PROMPT, SETTINGS, interleaved, main, start_app  # noqa: E402


def measure(runs: int) -> dict:
    import requests
    from PIL import Image

    from pipelines import Registry, Txt2ImgRequest
    from pipelines.device.local import local_studio
    from pipelines.device.manager import PipelineManager

    body = {"prompt": PROMPT, "seed": SETTINGS["seed"], "steps": SETTINGS["steps"], "cfg_scale": SETTINGS["guidance_scale"],
            "width": SETTINGS["width"], "height": SETTINGS["height"], "sampler_name": SETTINGS["scheduler"]}
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as library:
        studio = local_studio(PipelineManager(Registry(), device="cpu", dtype="float32"), outputs=library)
        request = Txt2ImgRequest(model="shapes", prompt=PROMPT, **SETTINGS)
        app, url = start_app(Path(folder))
        session = requests.Session()

        def in_process():
            studio.submit(request).result().images[0].load()

        def sdapi():
            answer = session.post(f"{url}sdapi/v1/txt2img", json=body, timeout=300)
            answer.raise_for_status()
            Image.open(io.BytesIO(base64.b64decode(answer.json()["images"][0]))).load()

        try:
            times = interleaved({"studio": in_process, "sdapi": sdapi}, runs)
            saved = len(list(Path(folder).rglob("*.png")))
        finally:
            app.terminate()
            app.wait(30)
            studio.close()
    median = {name: statistics.median(t) for name, t in times.items()}
    return {
        **{f"{name}_s": round(m, 3) for name, m in median.items()},
        "sdapi_over_studio": round(median["sdapi"] / median["studio"], 3),
        "runs": runs,
        "pngs_saved_by_the_app": saved,
        "all_s": {name: [round(x, 3) for x in t] for name, t in times.items()},
        "cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    main(measure, __doc__)
