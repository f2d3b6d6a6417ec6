"""Per-run pipeline changes: everything a run alters on a shared pipeline, applied before it and undone
after it, here and nowhere else.

Every task view of a model shares its modules (and, at first, its scheduler object), so any change a
request asks for would otherwise leak into the next run of any tab, or another person's. Each change is
a context manager over one `Run`; `applied(run)` enters them in order and leaves them in reverse, also
when the run fails or is stopped. A new kind of change is one more function in `CHANGES`.

Device side: imported where the work runs, never by the front.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from diffusers import DiffusionPipeline

from ..front.errors import AtelierError
from ..front.registry import ModelPreset
from ..front.requests import Request
from .sampling import fresh_scheduler


@dataclass(frozen=True)
class Run:
    """One run, as a change sees it."""

    pipe: DiffusionPipeline
    request: Request
    preset: ModelPreset
    vae_tiling_pixels: int  # larger outputs are decoded tile by tile
    offline: bool  # an adapter not on disk is not fetched
    gpu_speed: str = "off"  # the manager's speed-ups (pipelines/device/acceleration.py) that a change must keep
    lora_files: dict[str, str] = field(default_factory=dict)  # the asked LoRAs' files, by name (server side)


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
    vae = getattr(run.pipe, "vae", None)
    if vae is None:  # a pixel-space stage: nothing to decode
        yield
        return
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
    from .acceleration import after_adapter, exclusive
    from .downloads import adapter_folder

    with exclusive(run.pipe.unet):  # no compile in the background meanwhile (`auto`)
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
                after_adapter(run.pipe.unet)  # unloading reset the attention processors the speed-ups had set


@contextmanager
def lora(run: Run) -> Iterator[None]:
    """The request's LoRAs, each at its weight, for this run only.

    diffusers wraps the shared U-Net's (and text encoder's) layers in PEFT's LoRA layers, which every view
    of the model would see; `unload_lora_weights` after the run puts the original layers back, whose
    weights PEFT never changes (tested bit for bit). With the GPU speed-ups on, fused projections are
    split for the run (a LoRA adapts the separate ones) and captured graphs, which would replay the U-Net
    without the LoRA or keep it after, are dropped before and after.
    """
    asked = run.request.loras
    if not asked:
        yield
        return
    from .acceleration import after_adapter, before_adapter, exclusive

    pipe, fast = run.pipe, run.gpu_speed != "off"
    with exclusive(pipe.unet):  # no compile in the background meanwhile (`auto`)
        if fast:
            before_adapter(pipe.unet)
        try:
            adapters = []
            for index, (name, _) in enumerate(asked):
                if name not in run.lora_files:
                    raise AtelierError(f"The LoRA {name!r} is no longer on this server.")
                path = Path(run.lora_files[name])
                adapter = f"lora-{index}"  # the name may hold characters PEFT does not take
                try:
                    pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter)
                except (ValueError, KeyError, RuntimeError) as e:
                    raise AtelierError(f"The LoRA {name!r} cannot be applied to {run.preset.label}: {e}") from e
                adapters.append(adapter)
            pipe.set_adapters(adapters, adapter_weights=[weight for _, weight in asked])
            yield
        finally:
            pipe.unload_lora_weights()
            if fast:
                after_adapter(pipe.unet)


@contextmanager
def prompt_weighting(run: Run) -> Iterator[None]:
    """Weighted words, BREAK and prompts longer than the text encoder's window (pipelines/device/weighting.py).

    Every task encodes its text through the pipeline's `encode_prompt` (inside diffusers' `__call__`, or
    itself, as Morph does), so this pipeline object's own is replaced for the run and the class's comes
    back after. Texts that need none of it leave the pipeline untouched: exactly the unweighted pixels.
    """
    from .weighting import WeightedEncoder, needs_weighting

    texts = run.request.texts()
    if not needs_weighting(run.pipe.tokenizer, texts):
        yield
        return
    run.pipe.encode_prompt = WeightedEncoder(run.pipe, texts).encode_prompt
    try:
        yield
    finally:
        del run.pipe.encode_prompt


CHANGES: tuple[Callable[[Run], AbstractContextManager[None]], ...] = (
    scheduler,
    vae_tiling,
    ip_adapter,
    lora,
    prompt_weighting,
)


@contextmanager
def applied(run: Run) -> Iterator[None]:
    """Every change in `CHANGES` for the length of the run, undone in reverse order after it."""
    with ExitStack() as stack:
        for change in CHANGES:
            stack.enter_context(change(run))
        yield
