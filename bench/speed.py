"""One image as a person waits for it: over HTTP from `python app.py` (the page's API and AUTOMATIC1111's
`/sdapi/v1`), through a Studio, and bare.

    python bench/speed.py --runs 7
    python bench/speed.py --runs 7 --app= --app=--no-model-process    # two app settings side by side

Each path runs in its own clean process, so none is slowed by another's threads (a live Gradio server
slows small-op torch work in its own process: STACK-NOTES.md):

- http:   `python app.py` exactly as a user starts it (default settings, results saved to `outputs/` in a
          scratch folder and signed), driven with gradio_client from this process, which does nothing else;
- rest:   the same `/txt2img` over Gradio's own REST API (post, then read the event stream, as its docs show
          for curl), the picture downloaded: the app's own cost, without gradio_client's;
- sdapi:  the same app's `/sdapi/v1/txt2img`, the answer's base64 PNG decoded into pixels;
- studio: a process with the Studio and nothing else — no server, no client, results saved to a scratch
          Library as a script's would be (`--serve studio`);
- bare:   a process with the plain diffusers call on the same weights (`--serve bare`).

The paths take turns, interleaved, so drift in machine load hits every path alike; while one is timed the
others wait (the workers block on a pipe, the app is paused with SIGSTOP so its server's loops take no
core). Embedded model, 64², 20 steps, guidance 5, "Euler a". Prints the medians and the two ratios the
targets are set on (HTTP and /sdapi ≤ 1.15× the Studio, the Studio ≤ 1.05× bare). Anything else busy on the cores
shows up at once in a model this small: say how busy the machine was next to any figure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "a large blue triangle on a white background"
# One stage (Hires, the page's default for this model, off as `/sdapi` has it): the service's cost, not the cascade's.
SETTINGS = dict(seed=0, steps=20, guidance_scale=5.0, width=64, height=64, scheduler="Euler a", hires=False)


def serve(path: str) -> None:
    """A worker: one image of `path` per line read from stdin, its seconds written back (the first is a
    warm-up like any other; the driver decides what to keep)."""
    import torch

    from pipelines import Registry, Txt2ImgRequest
    from pipelines.device.local import local_studio
    from pipelines.device.manager import PipelineManager
    from pipelines.device.sampling import fresh_scheduler

    manager = PipelineManager(Registry(), device="cpu", dtype="float32")
    if path == "studio":
        studio = local_studio(manager, outputs=tempfile.mkdtemp(prefix="atelier-bench-"))
        request = Txt2ImgRequest(model="shapes", prompt=PROMPT, **SETTINGS)

        def once():
            studio.txt2img(request).result()
    else:
        pipe = manager.pipeline("shapes", "txt2img")

        def once():
            pipe.scheduler = fresh_scheduler("Euler a", pipe.scheduler.config)
            pipe(PROMPT, width=64, height=64, num_inference_steps=20, guidance_scale=5.0,
                 generator=torch.Generator("cpu").manual_seed(0))

    print("ready", torch.get_num_threads(), flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        once()
        print(time.perf_counter() - start, flush=True)


def start_worker(path: str) -> subprocess.Popen:
    worker = subprocess.Popen([sys.executable, __file__, "--serve", path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    line = worker.stdout.readline()
    if not line.startswith("ready"):
        raise RuntimeError(f"the {path} worker did not start")
    return worker


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process and its children (a model process beside the server) have used so far."""
    total = 0.0
    for process in (pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())):
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def timed_by(worker: subprocess.Popen, work_cpu: list[float]):
    def once() -> float:
        cpu = cpu_seconds(worker.pid)
        worker.stdin.write("go\n")
        worker.stdin.flush()
        seconds = float(worker.stdout.readline())
        work_cpu.append(cpu_seconds(worker.pid) - cpu)
        return seconds

    return once


def start_app(folder: Path, flags: list[str]) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free port, run from `folder` (so its outputs land there); returns once it serves."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    folder.mkdir(parents=True, exist_ok=True)
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--port", str(port), *flags],
        cwd=folder, env=env, stdout=subprocess.PIPE, text=True,
    )
    for line in app.stdout:
        if line.startswith("Atelier is running at "):
            return app, line.split()[4]
    raise RuntimeError("app.py ended before it served")


def measure(runs: int, apps: list[str]) -> dict:
    """Medians of each path; `apps` are app.py's flags for each HTTP path ("" as a user starts it)."""
    with tempfile.TemporaryDirectory() as folder:
        started = {flags: start_app(Path(folder) / str(i), flags.split()) for i, flags in enumerate(apps)}
        workers = {name: start_worker(name) for name in ("bare", "studio")}
        try:
            work_cpu: dict[str, list[float]] = {"bare": [], "studio": []}
            paths = {name: timed_by(workers[name], work_cpu[name]) for name in ("bare", "studio")}
            client_cpu: dict[str, list[float]] = {}
            for flags, (app, url) in started.items():
                for kind, over in (("http", over_http), ("rest", over_rest), ("sdapi", over_sdapi)):
                    name = f"{kind} {flags}".strip()
                    client_cpu[name], work_cpu[name] = [], []
                    paths[name] = while_running(app, over(url), client_cpu[name], work_cpu[name])
                app.send_signal(signal.SIGSTOP)
            times: dict[str, list[float]] = {name: [] for name in paths}
            for once in paths.values():
                once()  # warm-up: the model loads, caches fill
            for spent in (*client_cpu.values(), *work_cpu.values()):
                spent.clear()
            for run in range(runs):
                for name, once in paths.items():
                    times[name].append(once())
                print(f"run {run + 1}/{runs}:", {name: round(t[-1], 3) for name, t in times.items()}, file=sys.stderr)
            saved = len(list(Path(folder).rglob("*.png")))
        finally:
            for app, _ in started.values():
                app.send_signal(signal.SIGCONT)
                app.terminate()
                app.wait(30)
            for worker in workers.values():
                worker.stdin.close()
                worker.wait(30)
    median = {name: statistics.median(t) for name, t in times.items()}
    return {
        **{f"{name} s": round(m, 3) for name, m in median.items()},
        **{f"{name} / studio": round(m / median["studio"], 3) for name, m in median.items()
           if name.startswith(("http", "rest", "sdapi"))},
        "studio / bare": round(median["studio"] / median["bare"], 3),
        # The caller's own work per image (its client's threads, its HTTP clients, the downloads), on the
        # cores the model works on: CPU seconds, steady where wall times are not (a loaded machine).
        **{f"{name} client cpu s": round(statistics.median(spent), 3) for name, spent in client_cpu.items()},
        # The server's (or worker's) own CPU seconds per image, all its threads: what the service adds to the
        # model's work, steady under load where wall times are not.
        **{f"{name} work cpu s": round(statistics.median(spent), 3) for name, spent in work_cpu.items()},
        "runs": runs,
        "pngs_saved_by_the_apps": saved,
        "all_s": {name: [round(x, 3) for x in t] for name, t in times.items()},
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def while_running(app: subprocess.Popen, call: Callable[[], None], client_cpu: list[float],
                  work_cpu: list[float]) -> Callable[[], float]:
    """Seconds of one call to a started app (this process's CPU seconds for it go to `client_cpu`, the app's
    to `work_cpu`); the app runs only while it is timed (SIGSTOP otherwise), so its server's loops take no
    core from the other paths."""

    def once() -> float:
        app.send_signal(signal.SIGCONT)
        try:
            start, cpu, served = time.perf_counter(), time.process_time(), cpu_seconds(app.pid)
            call()
            client_cpu.append(time.process_time() - cpu)
            seconds = time.perf_counter() - start
            work_cpu.append(cpu_seconds(app.pid) - served)
            return seconds
        finally:
            app.send_signal(signal.SIGSTOP)

    return once


def over_http(url: str) -> Callable[[], None]:
    """One image through the page's API (gradio_client)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    return lambda: client.predict(prompt=PROMPT, negative_prompt="", num_images=1, model="shapes",
                                  api_name="/txt2img", **SETTINGS)


def over_rest(url: str) -> Callable[[], None]:
    """One image through the page's /txt2img over Gradio's own REST API (the two calls its docs show for
    curl: post the inputs, read the event stream), the picture then downloaded as gradio_client does."""
    import json

    import requests
    from gradio_client import Client

    info = Client(url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]["/txt2img"]
    given = {"prompt": PROMPT, "negative_prompt": "", "num_images": 1, "model": "shapes", **SETTINGS}
    data = [given.get(p["parameter_name"], p.get("parameter_default")) for p in info["parameters"]]
    session = requests.Session()

    def call() -> None:
        event = session.post(f"{url}gradio_api/call/txt2img", json={"data": data}, timeout=300).json()["event_id"]
        with session.get(f"{url}gradio_api/call/txt2img/{event}", stream=True, timeout=300) as stream:
            kind, answer = None, None
            for line in stream.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    kind = line[len("event: "):]
                elif line.startswith("data: ") and kind in ("complete", "error"):
                    answer = json.loads(line[len("data: "):])
                    break
        if kind != "complete":
            raise RuntimeError(f"/txt2img answered {kind}: {answer}")
        session.get(answer[0][0]["image"]["url"], timeout=60).raise_for_status()

    return call


def over_sdapi(url: str) -> Callable[[], None]:
    """One image through AUTOMATIC1111's /sdapi/v1/txt2img, its base64 PNG decoded into pixels."""
    import base64
    import io

    import requests
    from PIL import Image

    session = requests.Session()
    body = {"prompt": PROMPT, "seed": SETTINGS["seed"], "steps": SETTINGS["steps"],
            "cfg_scale": SETTINGS["guidance_scale"], "width": SETTINGS["width"], "height": SETTINGS["height"],
            "sampler_name": SETTINGS["scheduler"]}

    def call() -> None:
        answer = session.post(f"{url}sdapi/v1/txt2img", json=body, timeout=300)
        answer.raise_for_status()
        Image.open(io.BytesIO(base64.b64decode(answer.json()["images"][0]))).load()

    return call


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path)
    p.add_argument("--app", action="append", help="app.py's flags for an HTTP path, as one string; give it again "
                   "for another path side by side (default: one path, as a user starts it)")
    p.add_argument("--serve", choices=("studio", "bare"), help=argparse.SUPPRESS)  # a worker, started by the driver
    args = p.parse_args()
    if args.serve:
        return serve(args.serve)
    result = measure(args.runs, args.app or [""])
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
