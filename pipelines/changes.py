"""Per-run pipeline changes: everything a run alters on a shared pipeline, applied before it and undone
after it, here and nowhere else.

Every task view of a model shares its modules (and, at first, its scheduler object), so any change a
request asks for would otherwise leak into the next run of any tab, or another person's. Each change is
a context manager over one `Run`; `applied(run)` enters them in order and leaves them in reverse, also
when the run fails or is stopped. A new kind of change (a LoRA, prompt weighting) is one more function
in `CHANGES`.

Device side: imported where the work runs, never by the front.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass

from diffusers import DiffusionPipeline

from .errors import AtelierError
from .registry import ModelPreset
from .requests import Request
from .schedulers import fresh_scheduler


@dataclass(frozen=True)
class Run:
    """One run, as a change sees it."""

    pipe: DiffusionPipeline
    request: Request
    preset: ModelPreset
    vae_tiling_pixels: int  # larger outputs are decoded tile by tile
    offline: bool  # an adapter not on disk is not fetched
    gpu_speed: str = "off"  # the manager's speed-ups (pipelines/acceleration.py) that a change must keep


@contextmanager
def scheduler(run: Run) -> Iterator[None]:
    """A fresh scheduler of the asked kind, built from the model's own config; the model's own is put
    back after, so the next run starts from it again (not from this run's kind and overrides)."""
    own = run.pipe.scheduler
    run.pipe.scheduler = fresh_scheduler(run.request.scheduler, own.config)
    try:
        yield
    finally:
        run.pipe.scheduler = own


@contextmanager
def vae_tiling(run: Run) -> Iterator[None]:
    """Above the threshold the autoencoder works tile by tile, its memory that of one tile. It is
    shared by every view, so it is switched for this run only."""
    width, height = run.request.output_size()
    vae = run.pipe.vae
    if width * height > run.vae_tiling_pixels:
        vae.enable_tiling()
    else:
        vae.disable_tiling()
    try:
        yield
    finally:
        vae.disable_tiling()


@contextmanager
def ip_adapter(run: Run) -> Iterator[None]:
    """The model's image-prompt adapter, attached at the scale the request asks for, then detached.

    The adapter replaces the shared U-Net's attention processors in place, so it must never outlive the
    run: every other view of the same U-Net would then demand an image prompt.
    """
    scale = run.request.ip_adapter_scale()
    if scale is None:
        yield
        return
    adapter = run.preset.ip_adapter
    if adapter is None:
        raise AtelierError(f"{run.preset.label} has no image-prompt adapter.")
    from .downloads import adapter_folder

    run.pipe.load_ip_adapter(
        str(adapter_folder(adapter, offline=run.offline)),
        subfolder=adapter.subfolder,
        weight_name=adapter.weight_name,
        image_encoder_folder=adapter.image_encoder,
    )
    try:
        run.pipe.set_ip_adapter_scale(scale)
        yield
    finally:
        run.pipe.unload_ip_adapter()
        if run.gpu_speed != "off":
            from .acceleration import after_adapter

            after_adapter(run.pipe.unet)  # unloading reset the attention processors the speed-ups had set


CHANGES: tuple[Callable[[Run], AbstractContextManager[None]], ...] = (scheduler, vae_tiling, ip_adapter)


@contextmanager
def applied(run: Run) -> Iterator[None]:
    """Every change in `CHANGES` for the length of the run, undone in reverse order after it."""
    with ExitStack() as stack:
        for change in CHANGES:
            stack.enter_context(change(run))
        yield
