"""PipelineManager: the only owner of models.

A base model is loaded once; each kind of pipeline a task runs on (txt2img, img2img, inpaint) is a
`from_pipe` view over the same modules (identity, not copies). Several models may stay resident under a memory budget, least recently used unloaded first,
pinned ones never. All accelerator work runs under one lock; a failed load or run leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, DiffusionPipeline

from ..front.errors import AtelierError
from ..front.registry import ModelPreset, Registry
from ..front.runner import ModelState
from .acceleration import background, check_speed, speed_up, user_cache
from .downloads import Progress

# The kinds of pipeline a task may run on: the base model itself, and views over its modules.
VIEWS = {"img2img": AutoPipelineForImage2Image, "inpaint": AutoPipelineForInpainting}
UPSCALES = {"upscale2": 2, "upscale4": 4}  # a super-resolution stage of the model, by scale
KINDS = ("txt2img", *VIEWS, *UPSCALES)


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.float16 if device.type in ("cuda", "mps") else torch.float32
    dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
    if name not in dtypes:
        raise ValueError(f"dtype must be auto, {', '.join(dtypes)}; got {name!r}")
    return dtypes[name]


def module_bytes(*pipes: DiffusionPipeline) -> int:
    """Bytes held by the pipelines' weights together, each storage counted once however many tensors share
    it (views of one fused weight included)."""
    seen, total = set(), 0
    for pipe in pipes:
        for component in pipe.components.values():
            if isinstance(component, torch.nn.Module):
                for tensor in [*component.parameters(), *component.buffers()]:
                    storage = tensor.untyped_storage()
                    if storage.data_ptr() not in seen:
                        seen.add(storage.data_ptr())
                        total += storage.nbytes()
    return total


@dataclass
class Resident:
    """One loaded base model and the views derived from it."""

    preset: ModelPreset
    base: DiffusionPipeline
    bytes: int
    load_seconds: float
    views: dict[str, DiffusionPipeline] = field(default_factory=dict)
    pinned: bool = False


Loader = Callable[..., DiffusionPipeline]  # (preset, device, dtype, report=None) -> pipeline


class PipelineManager:
    def __init__(
        self,
        registry: Registry,
        *,
        device: str = "auto",
        dtype: str = "auto",
        memory_budget_bytes: int = 0,
        gpu_speed: str = "graphs",  # the app's default too (settings.py), chosen by bench/gpu.py
        offline: bool = False,
        loader: Loader | None = None,
        compile_cache: Path | None = None,  # where `auto` keeps compiled artifacts (default: the user's cache)
    ):
        self.registry = registry
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.memory_budget_bytes = memory_budget_bytes
        # What speeds sampling up on CUDA (pipelines/device/acceleration.py); nothing of it runs on other devices.
        check_speed(gpu_speed)  # a wrong value is refused on every device
        self.gpu_speed = gpu_speed if self.device.type == "cuda" else "off"
        self.offline = offline
        self.compile_cache = compile_cache or user_cache() / "compiled"
        self.lock = threading.RLock()  # one accelerator, one job at a time
        self._loader = loader or self._load_from_pretrained
        self._resident: OrderedDict[str, Resident] = OrderedDict()

    # -- loading --------------------------------------------------------------------------------------

    def _load_from_pretrained(
        self, preset: ModelPreset, device: torch.device, dtype: torch.dtype, report: Progress | None = None
    ) -> DiffusionPipeline:
        """Safetensors only; never remote code. Missing weights become a ModelUnavailable that says how
        to fetch them."""
        from .downloads import load_pipeline

        return load_pipeline(preset, device, dtype, offline=self.offline, report=report)

    def _prepare(self, pipe: DiffusionPipeline) -> DiffusionPipeline:
        pipe.set_progress_bar_config(disable=True)
        speed_up(pipe, self.gpu_speed, cache=self.compile_cache)  # "off" except on CUDA
        return pipe

    def _evict_for(self, incoming: int) -> None:
        """Unload least recently used, unpinned models until `incoming` bytes fit the budget."""
        for name in list(self._resident):
            used = sum(r.bytes for r in self._resident.values())
            fits = used + incoming <= self.memory_budget_bytes if self.memory_budget_bytes else not self._resident
            if fits:
                return
            if not self._resident[name].pinned:
                self.unload(name)

    def resident_model(self, name: str, report: Progress | None = None) -> Resident:
        """The named model, loaded if it is not resident (download progress goes to `report`); marks it
        most recently used.

        The resident models stay until the new one has loaded, so a failed switch (weights not on disk,
        a damaged file) keeps the working model. Only when both do not fit in memory at once are the
        unpinned ones unloaded first.
        """
        with self.lock:
            if name in self._resident:
                self._resident.move_to_end(name)
                return self._resident[name]
            preset = self.registry.get(name)
            start = time.perf_counter()
            try:
                base = self._load(preset, report)
            except torch.OutOfMemoryError:
                for other in [n for n, r in self._resident.items() if not r.pinned]:
                    self.unload(other)
                try:
                    base = self._load(preset, report)
                except torch.OutOfMemoryError as e:
                    raise AtelierError(
                        f"Not enough accelerator memory to load {preset.label}. Unload a model and try again."
                    ) from e
            resident = Resident(preset, base, module_bytes(base), time.perf_counter() - start, {"txt2img": base})
            self._evict_for(resident.bytes)
            self._resident[name] = resident
            return resident

    def _load(self, preset: ModelPreset, report: Progress | None) -> DiffusionPipeline:
        """The preset's pipeline, ready to run; a failure frees what the attempt took and says why."""
        try:
            return self._prepare(self._loader(preset, self.device, self.dtype, report))
        except (torch.OutOfMemoryError, AtelierError):
            self.release_memory()
            raise
        except Exception as e:
            self.release_memory()
            raise AtelierError(f"{preset.label} could not be loaded: {e}") from e

    def pipeline(self, model: str, kind: str, report: Progress | None = None) -> DiffusionPipeline:
        """The model's pipeline of this kind over its shared modules (created on first use, then cached)."""
        if kind not in KINDS:
            raise ValueError(f"unknown pipeline kind {kind!r}; one of {', '.join(KINDS)}")
        with self.lock:
            resident = self.resident_model(model, report)
            return self._view(resident, kind)

    def _view(self, resident: Resident, kind: str) -> DiffusionPipeline:
        if kind not in resident.views:
            resident.views[kind] = self._derive(resident, kind)
        return resident.views[kind]

    def _derive(self, resident: Resident, kind: str) -> DiffusionPipeline:
        if kind in UPSCALES:
            # The stage for this scale, else a larger one (its view shared), else a hires pass on the model.
            stage = resident.preset.upscaler(UPSCALES[kind])
            if stage is None:
                return self._view(resident, "img2img")
            if stage.scale != UPSCALES[kind]:
                return self._view(resident, f"upscale{stage.scale}")
            from .downloads import load_upscale_pipeline

            return self._prepare(load_upscale_pipeline(stage, resident.preset, resident.base, self.device, self.dtype, offline=self.offline))
        if kind == "inpaint" and resident.preset.inpaint_source:
            # A dedicated 9-channel inpainting U-Net; the autoencoder and text encoders stay shared.
            from .downloads import load_inpaint_pipeline

            return self._prepare(load_inpaint_pipeline(resident.preset, resident.base, self.device, self.dtype, offline=self.offline))
        # dtype must be passed: from_pipe otherwise casts the shared modules to float32.
        pipe = VIEWS[kind].from_pipe(resident.base, dtype=self.dtype)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    # -- residency ------------------------------------------------------------------------------------

    def resident(self) -> list[ModelState]:
        """The resident models, most recently used first. A snapshot taken without the lock, which a job
        holds from start to end: the page asks this while one runs, and must not wait for it."""
        return [
            ModelState(
                model=name,
                state="resident",
                device=str(self.device),
                dtype=str(self.dtype).removeprefix("torch."),
                megabytes=round(r.bytes / 2**20, 1),
                pinned=r.pinned,
            )
            for name, r in reversed(list(self._resident.items()))  # list(): one step, safe against a change
        ]

    def models(self) -> list[ModelState]:
        """Every preset: resident ones as they are, the others with what choosing them would cost."""
        resident = {r.model: r for r in self.resident()}
        return [resident.get(name) or self._not_resident(name) for name in self.registry.names]

    def _not_resident(self, name: str) -> ModelState:
        cost = self.switch_cost(name)
        if cost != "download":
            return ModelState(name, cost)
        # Full precision fetches the full-size weights: about twice the half-precision files.
        gigabytes = self.registry.get(name).download_gb * (1 if self.dtype == torch.float16 else 2)
        return ModelState(name, cost, download_gb=gigabytes)

    def is_resident(self, name: str) -> bool:
        return name in self._resident

    def pin(self, name: str, pinned: bool = True) -> None:
        with self.lock:
            if name in self._resident:
                self._resident[name].pinned = pinned

    def unload(self, name: str) -> bool:
        with self.lock:
            resident = self._resident.pop(name, None)
            if resident is None:
                return False
            for view in resident.views.values():  # a compile in the background would keep the weights alive
                builder = background(view.unet) if getattr(view, "unet", None) is not None else None
                if builder is not None:
                    builder.stop()
            resident.views.clear()
            del resident
            self.release_memory()
            return True

    def release_memory(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        elif self.device.type == "mps":
            torch.mps.empty_cache()

    @staticmethod
    def return_freed_memory() -> None:
        """Hand the heap a finished job freed back to the system.

        glibc keeps freed memory for reuse, so without this a studio idling between generations would
        hold the activations of its largest job on top of the weights (measured in bench/residency.py).
        """
        if sys.platform.startswith("linux"):
            with suppress(OSError, AttributeError):  # another C library: nothing to hand back this way
                ctypes.CDLL(None).malloc_trim(0)

    def switch_cost(self, name: str) -> str:
        """What choosing this model will cost now: resident, load from disk, download, or — offline,
        with the weights not here — "not available offline"."""
        if name in self._resident:
            return "resident"
        preset = self.registry.get(name)
        from huggingface_hub import constants

        from .downloads import is_on_disk

        if is_on_disk(preset):
            return "load from disk"
        return "not available offline" if self.offline or constants.HF_HUB_OFFLINE else "download"
