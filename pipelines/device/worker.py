"""The model worker: a Ray Serve deployment doing the device work of the cluster runner.

Each replica is one process with one accelerator (one GPU, or its share of a CPU machine's cores) and
does exactly what the in-process studio does: a `PipelineManager` with its residency rules (views
share the weights, least recently used unloaded under the memory budget) and a `LocalRunner` with its
one accelerator thread, lock, previews and per-run changes. So the same request and seeds give the
same pixels here as in-process.

Models are multiplexed by name: every request names its model (`multiplexed_model_id`), Serve routes it
to a replica that already holds that model when one is free, and each replica keeps at most
`models_per_replica` of them. A replica runs one job at a time (`max_ongoing_requests=1`), so waiting
requests queue in the front's router, where any replica that frees up can take them.

A job streams back: `Started` (which worker took it), the `Progress` events of its work, then the
`Output`. When the caller cancels the stream (Stop), Serve raises `CancelledError` in `run`, which
stops the local job: the work ends at its next denoising step.

This module imports Ray; the front imports it only where `--cluster` is set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields

from ray import serve

from ..front.errors import AtelierError
from ..front.jobs import Progress
from ..front.registry import Registry
from ..front.requests import Request
from ..front.runner import ModelState, Output

APP = "atelier"  # the Serve application's name on the cluster
DEPLOYMENT = "ModelWorker"

log = logging.getLogger("ray.serve")


@dataclass(frozen=True)
class WorkerConfig:
    """What every replica's manager is built with: plain values, as `serve deploy`'s args give them."""

    model_folders: dict[str, str] = field(default_factory=dict)  # extra diffusers folders by name, on the worker's node
    device: str = "auto"  # auto: the GPU Ray assigned to the replica, else the CPU
    dtype: str = "auto"
    memory_budget_gb: float = 0.0  # per replica; 0 = one model at a time
    models_per_replica: int = 1  # models a replica keeps (Serve routes to a replica holding the model)
    vae_tiling_pixels: int = 1024 * 1024
    gpu_speed: str = "graphs"  # what speeds sampling up on CUDA (pipelines/device/acceleration.py)
    offline: bool = False
    threads: int = 0  # torch CPU threads per replica; 0 leaves torch's default
    preload: str = ""  # a model to load as the replica starts, so the first request finds it resident

    @classmethod
    def from_args(cls, args: dict) -> WorkerConfig:
        """From a Serve config's `args`; an unknown key is refused by name (a typo would be ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ValueError(f"unknown worker setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**args)


@dataclass(frozen=True)
class Started:
    """The first item of a job's stream: the replica that took it."""

    worker: str


class Held:
    """A model as Serve's multiplexing holds it on one replica. When Serve lets go of it (its LRU is
    full) the manager unloads it too, so what Serve routes by is what the replica has in memory."""

    def __init__(self, model: str, manager):
        self.model = model
        self.manager = manager
        self.released = False

    def __del__(self):
        # Called by Serve on eviction and again by the garbage collector: only the first counts, so a
        # later copy of the same model, loaded anew, is never unloaded by an old one.
        if self.released:
            return
        self.released = True
        pinned = any(m.model == self.model and m.pinned for m in self.manager.resident())
        if not pinned:
            self.manager.unload(self.model)


@serve.deployment(name=DEPLOYMENT, max_ongoing_requests=1, graceful_shutdown_timeout_s=5)
class ModelWorker:
    def __init__(self, config: WorkerConfig):
        import torch

        from .local import LocalRunner
        from .manager import PipelineManager

        if config.threads:
            torch.set_num_threads(config.threads)
        self.manager = PipelineManager(
            Registry.with_folders(config.model_folders),
            device=config.device,
            dtype=config.dtype,
            memory_budget_bytes=int(config.memory_budget_gb * 2**30),
            gpu_speed=config.gpu_speed,
            offline=config.offline,
        )
        self.runner = LocalRunner(self.manager, vae_tiling_pixels=config.vae_tiling_pixels)
        self.id = serve.get_replica_context().replica_id.unique_id

        async def hold_model(model: str) -> Held:
            # Loading happens in the job, which reports it; here Serve only learns what this replica holds.
            return Held(model, self.manager)

        self.hold_model = serve.multiplexed(max_num_models_per_replica=config.models_per_replica)(hold_model)
        if config.preload:
            try:
                self.manager.resident_model(config.preload)
            except AtelierError as e:  # the worker still serves; the first request for it says why
                log.warning("worker %s did not preload %s: %s", self.id, config.preload, e)

    async def run(self, task: str, request: Request, seeds: list[int]) -> AsyncIterator[Started | Progress | Output]:
        """Stream a job: `Started`, its progress events, its output (or its error, raised)."""
        await self.hold_model(serve.get_multiplexed_model_id())
        yield Started(self.id)
        job = self.runner.submit(task, request, seeds)
        events = job.events()
        try:
            # Each event is awaited off the event loop, so a cancelled stream is noticed at once.
            while (event := await asyncio.to_thread(next, events, None)) is not None:
                yield event
            yield job.result()
        finally:
            job.cancel()  # the stream was cancelled or dropped: the work stops at its next step

    def models(self) -> list[ModelState]:
        return self.manager.models()

    def unload(self, model: str) -> bool:
        return self.manager.unload(model)

    def pin(self, model: str, pinned: bool) -> None:
        self.manager.pin(model, pinned)


def app_builder(args: dict) -> serve.Application:
    """The application `serve deploy deploy/atelier.yaml` builds: the model worker, its `args` as the
    `WorkerConfig` (replicas, GPUs and autoscaling are the config's deployment options)."""
    return ModelWorker.bind(WorkerConfig.from_args(dict(args)))
