"""GPU speed: Atelier (manager → studio → job, previews on) against what a user would pick instead, in one
process: plain diffusers fp16 eager, and diffusers' own documented speed recipe (`compiled`: U-Net and VAE
channels-last, `fuse_qkv_projections()`, `pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead",
fullgraph=True)`). Every Atelier row carries `speedup` (plain ÷ Atelier) and, once the recipe is measured
for its case, `vs_compiled` (compiled ÷ Atelier).

    python bench/gpu.py --out bench/results                    # every case and --gpu-speed, first CUDA device
    python bench/gpu.py --out /tmp/r --max-seconds 150         # stops cleanly when the time is spent
    python bench/gpu.py --smoke --out /tmp/r                   # a CPU in seconds: toy widths, 64², 2 steps

Cases (random weights, bench/architectures.py; speed does not depend on the weights), 30 steps, Euler a,
guidance 7.5: SD 1.5 architecture 512² batch 1 and batch 4, SDXL architecture 1024² batch 1.

For each model family a pipeline is built; plain diffusers runs on it first, then Atelier at several speeds
over the same modules (the speeds change the modules in place, so plain must come first); the compiled
speeds and "off" get fresh builds later (see PLAN). Each measurement:
one warm-up call with --warmup-steps steps (its time is recorded as `first_call_s`, and as `first_image_s`
when it has every step: compilation and graph capture happen there), then --runs timed calls (the case's own
count by default), median. Peak memory:
torch.cuda.max_memory_allocated over the timed calls; for graphs the graphs' private memory pool is added
(that memory is reserved while the graphs live, though the allocator no longer counts it as allocated).

The most telling measurements come first; one the time left cannot pay for is skipped and recorded so, as
is a compile whose warm-up exceeds --max-warmup. Every measurement is in its own try block: an error is
recorded and the next one runs. The JSON (one file per run in --out) is rewritten after every measurement,
so a run cut short still leaves what it measured.
"""

from __future__ import annotations

import time

START = time.perf_counter()  # the time budget counts the imports too

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.architectures import random_pipeline  # noqa: E402
from pipelines import Registry, Txt2ImgRequest  # noqa: E402
from pipelines.device.acceleration import (  # noqa: E402
    BackgroundCompile,
    GraphedForward,
    background,
    capture_by_recomputing,
    describe,
    graphed,
    speed_up,
)
from pipelines.device.local import local_studio  # noqa: E402
from pipelines.device.manager import PipelineManager  # noqa: E402
from pipelines.front.registry import SD15_LATENT_RGB, SDXL_LATENT_RGB, ModelPreset  # noqa: E402

PROMPT = "a large red circle at the top left on a white background"
GUIDANCE = 7.5


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    size: int
    batch: int
    runs: int  # timed runs unless --runs says otherwise (batch 1 is quick and host-noisy: more runs)
    guess_s: float  # seconds per plain run on an H100/H200, for the time budget until measured


CASES = (
    Case("sd15-512-b1", "sd15", 512, 1, 5, 1.7),
    Case("sd15-512-b4", "sd15", 512, 4, 3, 2.5),
    Case("sdxl-1024-b1", "sdxl", 1024, 1, 3, 4.5),
)
# (family, [(case, speed), …]): one fresh build per line, measured in this order, so a spent budget drops
# the least telling. Plain comes first on each build (the speeds change modules in place); a speed
# without graphs after one with them has the graphs removed first. Graphs, the expected default, before
# eager; compilation (slow first call) and Atelier with nothing applied ("off") last.
PLAN = (
    (
        "sd15",
        [
            ("sd15-512-b1", "plain"),
            ("sd15-512-b4", "plain"),
            ("sd15-512-b1", "graphs"),
            ("sd15-512-b4", "graphs"),
            ("sd15-512-b1", "eager"),
            ("sd15-512-b4", "eager"),
        ],
    ),
    ("sd15", [("sd15-512-b1", "compiled"), ("sd15-512-b4", "compiled")]),  # the recipe changes the modules
    ("sdxl", [("sdxl-1024-b1", "plain"), ("sdxl-1024-b1", "graphs"), ("sdxl-1024-b1", "eager")]),
    ("sdxl", [("sdxl-1024-b1", "compiled")]),
    ("sd15", [("sd15-512-b1", "compile-graphs"), ("sd15-512-b4", "compile-graphs"), ("sd15-512-b1", "compile")]),
    # The default candidate: graphs at once, the whole U-Net compiled in the background and adopted.
    ("sd15", [("sd15-512-b1", "auto"), ("sd15-512-b4", "auto")]),
    ("sdxl", [("sdxl-1024-b1", "auto")]),
    ("sd15", [("sd15-512-b1", "off")]),
    ("sdxl", [("sdxl-1024-b1", "compile-graphs")]),
)
BUILD_GUESS_S = {"sd15": 4.0, "sdxl": 10.0}
COMPILE_GUESS_S = {"sd15": 25.0, "sdxl": 50.0}  # first call with regional compilation (19.3 s measured for SD 1.5)
RECIPE_GUESS_S = {"sd15": 70.0, "sdxl": 95.0}  # first call of the docs' recipe (69 s and 94 s on an H200)


def docs_recipe(pipe, *, compile_unet: bool = True) -> tuple[str, ...]:
    """diffusers' documented speed recipe ("Accelerate inference of text-to-image diffusion models"), as a
    user would apply it to their pipeline; returns what was applied."""
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    pipe.fuse_qkv_projections()
    applied = ("channels-last", "fuse_qkv_projections")
    if compile_unet:
        pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead", fullgraph=True)
        applied += ("torch.compile(unet, mode='reduce-overhead', fullgraph=True)",)
    return applied


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def gigabytes(n: float | None) -> float | None:
    return None if n is None else round(n / 2**30, 3)


def graph_pool_bytes() -> int | None:
    """Bytes in private (CUDA graph) memory pools."""
    try:
        segments = torch.cuda.memory_snapshot()
        return sum(s["total_size"] for s in segments if tuple(s.get("segment_pool_id", (0, 0))) != (0, 0))
    except Exception:
        return None


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.cuda = args.device.startswith("cuda")
        self.dtype = torch.float16 if self.cuda else torch.float32
        self.cases = {c.name: c for c in CASES if c.name in args.cases}
        self.plain: dict[str, dict] = {}  # case → plain measurement (and its last images)
        self.compiled: dict[str, dict] = {}  # case → the docs' recipe's measurement
        self.plain_images: dict[str, list[np.ndarray]] = {}
        self.compile_first_s: dict[str, float] = {}
        self.rows: list[dict] = []
        date = datetime.date.today().isoformat()
        if self.cuda and not torch.cuda.is_available():
            raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
        device = torch.cuda.get_device_name(torch.device(args.device)) if self.cuda else platform.processor() or "cpu"
        self.doc = {
            "date": date,
            "device": device,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "diffusers": _version("diffusers"),
            "transformers": _version("transformers"),
            "python": platform.python_version(),
            "settings": {
                "steps": args.steps,
                "warmup_steps": args.warmup_steps,
                "runs": args.runs,
                "dtype": str(self.dtype).removeprefix("torch."),
                "scheduler": "Euler a",
                "guidance_scale": GUIDANCE,
                "previews": "on (Studio default rate)",
                "tiny": args.tiny,
                "emulate": args.emulate,
                "max_seconds": args.max_seconds,
                "max_warmup": args.max_warmup,
                "sizes": {c.name: args.size or c.size for c in self.cases.values()},
            },
            "results": self.rows,
        }
        args.out.mkdir(parents=True, exist_ok=True)
        slug = "".join(ch if ch.isalnum() else "-" for ch in device.lower()).strip("-")[:40] or "device"
        self.path = args.out / f"gpu-{date}-{datetime.datetime.now():%H%M%S}-{slug}.json"

    # -- time -------------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return time.perf_counter() - START

    def left(self) -> float:
        return self.args.max_seconds - self.elapsed()

    def estimate(self, case: Case, speed: str) -> float:
        """Seconds a measurement will take: the warm-up call and the timed runs."""
        plain = self.plain.get(case.name, {})
        per_run = plain.get("plain_s") or (case.guess_s if self.cuda else 0.5)
        first = plain.get("first_call_s") or per_run
        if speed == "compiled":
            first = RECIPE_GUESS_S[case.family] if self.cuda else 1.0
        elif speed.startswith("compile"):
            first = self.compile_first_s.get(case.family) or COMPILE_GUESS_S[case.family] if self.cuda else 1.0
        elif speed == "graphs":
            first += 2.0  # capture
        elif speed == "auto":  # images go on while the whole U-Net compiles (the docs' recipe's first call)
            first = RECIPE_GUESS_S[case.family] if self.cuda else 1.0
        return first + self.runs(case) * per_run * (0.6 if "graphs" in speed else 1.0)

    def runs(self, case: Case) -> int:
        return self.args.runs or case.runs

    # -- output -----------------------------------------------------------------------------------------

    def write(self, complete: bool = False) -> None:
        self.doc["elapsed_s"] = round(self.elapsed(), 1)
        self.doc["complete"] = complete
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=2, default=str))
        os.replace(tmp, self.path)

    def log(self, text: str) -> None:
        print(f"[{self.elapsed():6.1f} s] {text}", flush=True)

    # -- measuring --------------------------------------------------------------------------------------

    def run(self) -> None:
        speeds = set(self.args.speeds) | {"plain"}
        for family, stages in PLAN:
            stages = [(self.cases[c], s) for c, s in stages if c in self.cases and s in speeds]
            if not stages:
                continue
            build_guess = BUILD_GUESS_S[family] if self.cuda else 2.0
            if self.left() < build_guess + self.estimate(*stages[0]):
                for case, speed in stages:
                    self.record(case, speed, skipped=f"time budget: {self.left():.0f} s left")
                continue
            pipe = None
            try:
                start = time.perf_counter()
                pipe = random_pipeline(family, self.dtype, self.args.device, tiny=self.args.tiny)
                pipe.set_progress_bar_config(disable=True)
                self.log(f"built {family} in {time.perf_counter() - start:.1f} s")
                for case, speed in stages:
                    self.stage(pipe, case, speed)
            except Exception as e:
                self.log(f"{family}: {type(e).__name__}: {e}")
                for case, speed in stages:
                    if not any(r["case"] == case.name and r["speed"] == speed for r in self.rows):
                        self.record(case, speed, error=f"build: {type(e).__name__}: {e}"[:2000])
            finally:
                del pipe
                self.release()
        self.write(complete=True)

    def record(self, case: Case, speed: str, **fields) -> dict:
        row = {"case": case.name, "speed": speed, "date": self.doc["date"], "device": self.doc["device"]} | fields
        self.rows.append(row)
        self.write()
        return row

    def stage(self, pipe, case: Case, speed: str) -> None:
        if speed != "plain" and case.name not in self.plain:
            self.record(case, speed, skipped="no plain measurement to compare with")
            return
        estimate = self.estimate(case, speed)
        if estimate > self.left():
            self.record(case, speed, skipped=f"time budget: about {estimate:.0f} s needed, {self.left():.0f} s left")
            self.log(f"{case.name} {speed}: skipped (time)")
            return
        if (
            speed.startswith("compile")
            and speed != "compiled"
            and self.cuda
            and self.compile_first_s.get(case.family, 0) > self.args.max_warmup
        ):
            self.record(case, speed, skipped=f"compile warm-up over {self.args.max_warmup:.0f} s for {case.family}")
            return
        if (
            speed in ("compile", "compile-graphs")
            and case.family == "sdxl"
            and self.compile_first_s.get("sd15", 0) * 2 > self.args.max_warmup
        ):
            self.record(
                case, speed, skipped=f"compile warm-up expected over {self.args.max_warmup:.0f} s (twice SD 1.5's)"
            )
            return
        self.log(f"{case.name} {speed}: about {estimate:.0f} s")
        try:
            if speed == "plain":
                row = self.measure_plain(pipe, case)
            elif speed == "compiled":
                row = self.measure_compiled(pipe, case)
            else:
                row = self.measure_atelier(pipe, case, speed)
            self.record(case, speed, **row)
            shown = ("plain_s", "compiled_s", "atelier_s", "speedup", "vs_compiled", "first_call_s")
            self.log(f"{case.name} {speed}: " + ", ".join(f"{k}={row[k]}" for k in shown if k in row))
        except Exception as e:
            self.record(case, speed, error=f"{type(e).__name__}: {e}"[:2000], traceback=traceback.format_exc()[-4000:])
            self.log(f"{case.name} {speed}: {type(e).__name__}: {e}")
        finally:
            self.release()

    def timed(self, call, steps: int, case: Case, may_skip: bool, settle=None) -> dict:
        """The warm-up call, then `settle` (runs until a background compile is adopted), then the timed runs
        (fewer if time runs out), their median and peak memory."""
        sync(self.args.device)
        start = time.perf_counter()
        call(self.args.warmup_steps)
        sync(self.args.device)
        first = time.perf_counter() - start
        out = {"first_call_s": round(first, 3), "first_call_steps": self.args.warmup_steps}
        if settle is not None:
            out |= settle(call, steps, start)
        if self.args.warmup_steps == steps:
            out["first_image_s"] = out["first_call_s"]
        if may_skip and first > self.args.max_warmup:
            out["skipped"] = f"warm-up {first:.1f} s is over --max-warmup {self.args.max_warmup:.0f} s"
            return out
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        times, images = [], []
        for _ in range(self.runs(case)):
            if times and self.left() < statistics.median(times):
                out["cut_short"] = "time budget"
                break
            sync(self.args.device)
            start = time.perf_counter()
            images = call(steps)
            sync(self.args.device)
            times.append(time.perf_counter() - start)
        out |= {"median_s": round(statistics.median(times), 4), "runs_s": [round(t, 4) for t in times]}
        if self.cuda:
            out |= {
                "peak_gb": gigabytes(torch.cuda.max_memory_allocated()),
                "reserved_gb": gigabytes(torch.cuda.max_memory_reserved()),
            }
        out["images"] = [np.asarray(image.convert("RGB")) for image in images]
        return out

    def plain_call(self, pipe, case: Case):
        """What a user's own script does: the pipeline called directly, one generator per image."""
        size = self.args.size or case.size

        def call(steps: int):
            return pipe(
                prompt=PROMPT,
                negative_prompt="",
                num_images_per_prompt=case.batch,
                height=size,
                width=size,
                num_inference_steps=steps,
                guidance_scale=GUIDANCE,
                generator=[torch.Generator("cpu").manual_seed(s) for s in range(case.batch)],
            ).images

        return call

    def measure_plain(self, pipe, case: Case) -> dict:
        out = self.timed(self.plain_call(pipe, case), self.args.steps, case, may_skip=False)
        self.plain_images[case.name] = out.pop("images")
        row = {"plain_s": out.pop("median_s"), "plain_runs_s": out.pop("runs_s")} | out
        if "peak_gb" in row:
            row["plain_peak_gb"] = row.pop("peak_gb")
            row["plain_reserved_gb"] = row.pop("reserved_gb")
        self.plain[case.name] = row
        return row

    def measure_compiled(self, pipe, case: Case) -> dict:
        """The docs' recipe on a fresh build, with its first-call (compilation) cost. On a CPU (--emulate) the
        recipe runs without torch.compile, so the smoke run stays seconds long."""
        applied = docs_recipe(pipe, compile_unet=self.cuda or not self.args.emulate)
        out = self.timed(self.plain_call(pipe, case), self.args.steps, case, may_skip=False)
        images = out.pop("images")
        row = {"recipe": applied, "compiled_s": out.pop("median_s"), "compiled_runs_s": out.pop("runs_s")} | out
        row["plain_s"] = self.plain[case.name]["plain_s"]
        row["speedup"] = round(row["plain_s"] / row["compiled_s"], 3)  # the recipe against plain eager
        if "peak_gb" in row:
            row["compiled_peak_gb"] = row.pop("peak_gb")
        row["pixels_vs_plain"] = pixel_difference(images, self.plain_images.get(case.name, []))
        self.compiled[case.name] = row
        for earlier in self.rows:  # Atelier rows of this case measured before the recipe
            if earlier["case"] == case.name and earlier.get("atelier_s"):
                earlier["compiled_s"] = row["compiled_s"]
                earlier["vs_compiled"] = round(row["compiled_s"] / earlier["atelier_s"], 3)
        return row

    def measure_atelier(self, pipe, case: Case, speed: str) -> dict:
        size = self.args.size or case.size
        if speed in ("off", "eager", "compile") and graphed(pipe.unet) is not None:
            GraphedForward.uninstall(pipe.unet)  # a speed without graphs after one with them
        preset = ModelPreset(
            name=f"{case.family}-random",
            label=f"{case.family} architecture, random weights",
            source="random",
            family=case.family,
            width=size,
            height=size,
            min_size=64,
            max_size=max(size, 1024),
            scheduler="Euler a",
            variant=None,
            latent_rgb=SDXL_LATENT_RGB if case.family == "sdxl" else SD15_LATENT_RGB,
        )
        if self.args.emulate and speed != "off":
            # A CPU check of the GPU path's plumbing: the speed-ups applied here (the manager applies them on
            # CUDA only), graphs through a stand-in capture, compilation left out.
            emulated = {"compile": "eager", "compile-graphs": "graphs", "auto": "graphs"}.get(speed, speed)
            if emulated == "graphs":
                GraphedForward.install(pipe.unet, capture=capture_by_recomputing, device_types=("cpu",))
            if speed == "auto":  # the background compile's plumbing, with the forward itself as its "compile"
                BackgroundCompile.attach(graphed(pipe.unet), compile=lambda forward: forward)
            speed_up(pipe, emulated)
        manager = PipelineManager(
            Registry((preset,)),
            device=self.args.device,
            dtype=str(self.dtype).removeprefix("torch."),
            gpu_speed=speed,
            loader=lambda *a, **k: pipe,  # `auto` keeps its compiled artifacts in the user's cache, as the app does
        )
        studio = local_studio(manager, max_pixels=max(size * size, 1024 * 1024))
        try:

            def call(steps: int):
                request = Txt2ImgRequest(
                    model=preset.name,
                    prompt=PROMPT,
                    negative_prompt="",
                    seed=0,
                    steps=steps,
                    width=size,
                    height=size,
                    guidance_scale=GUIDANCE,
                    scheduler="Euler a",
                    num_images=case.batch,
                )
                return studio.txt2img(request).result().images

            settle = self.settle_background(pipe) if speed == "auto" else None
            out = self.timed(call, self.args.steps, case, may_skip=speed.startswith("compile"), settle=settle)
            if speed.startswith("compile"):
                self.compile_first_s[case.family] = max(self.compile_first_s.get(case.family, 0.0), out["first_call_s"])
            row = {"gpu_speed": speed, "effective": describe(pipe) | {"manager_gpu_speed": manager.gpu_speed}}
            if "skipped" in out:
                return row | out
            plain = self.plain[case.name]
            row |= {"plain_s": plain["plain_s"], "atelier_s": out.pop("median_s"), "atelier_runs_s": out.pop("runs_s")}
            row["speedup"] = round(row["plain_s"] / row["atelier_s"], 3)
            if case.name in self.compiled:
                row["compiled_s"] = self.compiled[case.name]["compiled_s"]
                row["vs_compiled"] = round(row["compiled_s"] / row["atelier_s"], 3)
            images = out.pop("images")
            row |= out
            graphs = graphed(pipe.unet)
            if graphs is not None and graphs.graphs:
                row["graph_vs_eager_max_rel"] = graphs.verify()
                row["graph_pool_gb"] = gigabytes(graph_pool_bytes()) if self.cuda else None
            if "peak_gb" in row and plain.get("plain_peak_gb"):
                # memory_ratio counts the graphs' pool as held throughout (an upper bound);
                # memory_ratio_allocated is max_memory_allocated alone, as for plain.
                row["plain_peak_gb"] = plain["plain_peak_gb"]
                row["atelier_peak_gb"] = round(row["peak_gb"] + (row.get("graph_pool_gb") or 0.0), 3)
                row["memory_ratio"] = round(row["atelier_peak_gb"] / plain["plain_peak_gb"], 3)
                row["memory_ratio_allocated"] = round(row["peak_gb"] / plain["plain_peak_gb"], 3)
                row["reserved_ratio"] = round(row["reserved_gb"] / plain["plain_reserved_gb"], 3)
            difference = pixel_difference(images, self.plain_images.get(case.name, []))
            if difference:
                row["pixels_vs_plain"] = difference
            return row
        finally:
            studio.close()  # its accelerator thread ends with the case

    def settle_background(self, pipe):
        """For `auto`: images go on being made while the U-Net compiles in the background (their times are
        recorded: the switch must not slow them), until the compiled forward is adopted."""

        def settle(call, steps: int, began: float) -> dict:
            graphs, builder = graphed(pipe.unet), background(pipe.unet)
            if builder is None:
                return {"background": "not attached"}
            during = []
            while builder.state == "compiling" and time.perf_counter() - began < self.args.max_warmup and self.left() > 30:
                start = time.perf_counter()
                call(steps)
                sync(self.args.device)
                during.append(round(time.perf_counter() - start, 4))
            call(steps)  # taken up at this job's start: the graphs recaptured over the compiled kernels
            sync(self.args.device)
            return {"background": builder.state, "background_compile_s": builder.seconds,
                    "full_speed_after_s": round(time.perf_counter() - began, 3), "during_switch_s": during,
                    "cache_loaded": builder.cache_loaded, "adoptions": graphs.stats["adopted"]}

        return settle

    def release(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()

    # -- the summary ------------------------------------------------------------------------------------

    def summary(self) -> str:
        lines = [
            f"{self.doc['device']} · {self.doc['date']} · {self.elapsed():.0f} s · {self.path}",
            f"{'case':14} {'speed':15} {'plain s':>8} {'recipe s':>8} {'ours s':>8} {'speedup':>8} {'vs rec.':>8} "
            f"{'1st call':>8} {'mem ×':>6}  note",
        ]
        for r in self.rows:
            note = r.get("skipped") or r.get("error", "")[:60] or r.get("cut_short", "")
            ours, speedup, versus, memory = (
                r.get(k, "") or "" for k in ("atelier_s", "speedup", "vs_compiled", "memory_ratio")
            )
            lines.append(
                f"{r['case']:14} {r['speed']:15} {r.get('plain_s', ''):>8} {r.get('compiled_s', ''):>8} {ours:>8} "
                f"{speedup:>8} {versus:>8} {r.get('first_call_s', ''):>8} {memory:>6}  {note}"
            )
        return "\n".join(lines)


def pixel_difference(images: list[np.ndarray], reference: list[np.ndarray]) -> dict | None:
    """Mean and largest absolute difference (0–255) from the plain run's images of the same seeds."""
    if not reference or len(reference) != len(images):
        return None
    diff = [np.abs(a.astype(np.int16) - b.astype(np.int16)) for a, b in zip(images, reference)]
    return {"mean_abs": round(float(np.mean([d.mean() for d in diff])), 3), "max_abs": int(max(d.max() for d in diff))}


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder for the run's JSON")
    p.add_argument("--device", default="cuda")
    p.add_argument("--size", type=int, default=0, help="image side for every case (0: each case's own)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup-steps", type=int, default=30, help="steps of the untimed first call (the first image)")
    p.add_argument("--runs", type=int, default=0, help="timed runs per measurement (0: each case's own)")
    p.add_argument("--max-seconds", type=float, default=540.0, help="time budget for the whole run, imports included")
    p.add_argument(
        "--max-warmup", type=float, default=120.0, help="a compile warm-up longer than this is not timed further"
    )
    p.add_argument("--cases", nargs="+", default=[c.name for c in CASES], choices=[c.name for c in CASES])
    p.add_argument(
        "--speeds",
        nargs="+",
        default=["off", "eager", "graphs", "compile-graphs", "compile", "compiled", "auto"],
        choices=["off", "eager", "graphs", "compile", "compile-graphs", "compiled", "auto"],
        help="Atelier's --gpu-speed settings to measure, and `compiled`: the docs' recipe (plain always runs)",
    )
    p.add_argument("--tiny", action="store_true", help="toy-width architectures (smoke runs)")
    p.add_argument(
        "--smoke", action="store_true", help="= --device cpu --tiny --size 64 --steps 2 --warmup-steps 1 --runs 1"
    )
    p.add_argument(
        "--emulate", action="store_true", help="on a CPU: apply the speed-ups anyway, graphs by a stand-in capture"
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.device, args.tiny, args.size, args.steps, args.warmup_steps, args.runs = "cpu", True, 64, 2, 1, 1
        torch.set_num_threads(1)  # toy-sized ops: thread hand-offs would dominate on a busy machine
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    bench = Bench(args)
    bench.log(f"{bench.doc['device']}, torch {torch.__version__}, budget {args.max_seconds:.0f} s")
    try:
        bench.run()
    finally:
        bench.write(complete=bench.doc.get("complete", False))
        print(bench.summary(), flush=True)
    return bench.path


if __name__ == "__main__":
    main()
