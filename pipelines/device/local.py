"""LocalRunner: the device work in this process, on one long-lived accelerator thread.

Every job runs on the same worker thread: the work is serialised behind the manager's lock anyway, and
torch sets up its CPU thread pool per calling thread (a fresh thread per job cost 10–20 % of a
one-second image). A job's work: wait for the lock, get the model's pipeline of the kind the request
runs on, apply the per-run changes, run the task, undo the changes, hand freed memory back.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from ..front.credentials import Credentials
from ..front.errors import AtelierError
from ..front.jobs import Job
from ..front.registry import ModelPreset
from ..front.requests import Request
from ..front.runner import ModelState, Output, Task
from ..front.studio import Studio
from ..front.styles import StyleBook
from ..tasks import TASKS
from .acceleration import between_jobs
from .changes import Run, applied
from .manager import PipelineManager
from .previews import latent_preview
from .zerogpu import gpu_seconds, on_gpu

PREVIEW_SECONDS = 0.5  # a preview costs a decode; twice a second is enough to watch a picture form
STAGE_PHASE = "Upscaling"  # what the progress bar says while a super-resolution stage runs

log = logging.getLogger(__name__)


class LocalRunner:
    capacity = 1  # one accelerator thread

    def __init__(self, manager: PipelineManager, *, vae_tiling_pixels: int = 1024 * 1024):
        self.manager = manager
        self.vae_tiling_pixels = vae_tiling_pixels
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atelier-accelerator")
        self._jobs: set[Job[Output]] = set()  # submitted and not yet ended: what closing stops

    def submit(self, task: str, request: Request, seeds: list[int]) -> Job[Output]:
        job: Job[Output] = Job()
        work = TASKS.get(task)

        def accelerator() -> Output:
            try:
                return self._run(job, work, request, seeds)
            finally:
                self._jobs.discard(job)

        # The accelerator entry point: on a ZeroGPU Space the GPU is lent for this long, per job.
        width, height = request.output_size()
        seconds = gpu_seconds(request.steps, width, height, request.images_made())
        self._jobs.add(job)
        self._worker.submit(job.run, on_gpu(accelerator, seconds))
        return job

    def models(self) -> list[ModelState]:
        return self.manager.models()

    def unload(self, model: str) -> bool:
        return self.manager.unload(model)

    def pin(self, model: str, pinned: bool) -> None:
        self.manager.pin(model, pinned)

    def close(self) -> None:
        """Stop: the running job ends at its next step, the waiting ones never start."""
        for job in list(self._jobs):
            job.cancel()
        self._worker.shutdown(wait=True, cancel_futures=True)

    def _run(self, job: Job[Output], task: Task, request: Request, seeds: list[int]) -> Output:
        manager = self.manager
        preset = manager.registry.get(request.model)
        with manager.lock:
            job.check()  # stopped while it waited for the accelerator
            began, first = time.perf_counter(), not manager.is_resident(request.model)
            if first:
                job.report(0, request.steps, message=f"Loading {preset.label}…")
            pipe = manager.pipeline(
                request.model,
                request.pipeline,
                report=lambda done, message: job.report(0, 0, message=f"{message} {done:.0%}"),
            )
            # A cascade's later stages, handed to the work by kind (none for most tasks).
            stages = {kind: manager.pipeline(request.model, kind) for kind in request.stages()}
            try:
                loras = manager.registry.loras(request.model)
                files = {name: loras[name].path for name, _ in request.loras if name in loras}
                between_jobs(pipe)  # a compile finished in the background is taken up here, never mid-picture
                run = Run(pipe, request, preset, self.vae_tiling_pixels, manager.offline, manager.gpu_speed, files)
                with applied(run):
                    output = task.run(
                        pipe, request, seeds, on_step=_previews(job, pipe, preset), should_stop=job.stop_requested,
                        **({"stages": stages} if stages else {}),
                    )
                if first:  # what a person waited for after a start: loading, then the first run's set-up
                    loaded = manager.resident_model(request.model).load_seconds
                    log.info("%s: first result in %.1f s (loading %.1f s, the run %.1f s)", preset.label,
                             time.perf_counter() - began, loaded, time.perf_counter() - began - loaded)
                return output
            except torch.OutOfMemoryError as e:
                manager.release_memory()
                raise AtelierError("Out of accelerator memory: try a smaller size or fewer images.") from e
            except Exception:
                manager.release_memory()
                raise
            finally:
                manager.return_freed_memory()


def _previews(job: Job, pipe, preset: ModelPreset):
    """The step hook: progress every step, a preview at most every PREVIEW_SECONDS (a preview costs a
    device sync and a decode), the first after PREVIEW_SECONDS rather than at step 1."""
    last = [time.perf_counter()]

    def on_step(step: int, total: int, latents, source=None) -> None:
        """`source`: the pipeline whose latents these are, where it is not the job's own (a later stage)."""
        now = time.perf_counter()
        preview = None
        if latents is not None and now - last[0] >= PREVIEW_SECONDS and step < total:
            preview, last[0] = latent_preview(source or pipe, latents, preset), now
        job.report(step, total, preview, phase=STAGE_PHASE if source is not None else "")

    return on_step


def local_studio(
    manager: PipelineManager,
    *,
    vae_tiling_pixels: int = 1024 * 1024,
    outputs: str = "",
    max_pixels: int = 1024 * 1024,
    max_images: int = 8,
    styles: StyleBook | None = None,
    credentials: Credentials | None = None,
) -> Studio:
    """A studio whose device work runs in this process on `manager`'s models (the app's, and what
    scripts, benchmarks and tests use)."""
    runner = LocalRunner(manager, vae_tiling_pixels=vae_tiling_pixels)
    return Studio(
        runner, manager.registry, outputs=outputs, max_pixels=max_pixels, max_images=max_images, styles=styles,
        credentials=credentials,
    )
