"""Getting a preset's weights onto the machine and into a pipeline, safely.

Only safetensors are fetched and loaded (never pickle, never remote code). A download fetches just the
files the pipeline needs (the fp16 variant where that is what will run), resumes where it stopped, and
reports progress; offline, a clear message names the command that fetches the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import AutoPipelineForText2Image, DiffusionPipeline
from huggingface_hub import snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError
from tqdm.auto import tqdm

from ..front.errors import AtelierError, ModelUnavailable
from ..front.registry import IPAdapter, ModelPreset, Upscaler

Progress = Callable[[float, str], None]  # (fraction done, message)


def allow_patterns(variant: str | None) -> list[str]:
    weights = f"*.{variant}.safetensors" if variant else "*.safetensors"
    return ["*.json", "*.txt", "tokenizer*/*", weights]


def fetch_command(preset: ModelPreset, variant: str | None) -> str:
    patterns = " ".join(f"--include '{p}'" for p in allow_patterns(variant))
    return f"hf download {preset.source} {patterns}"


def _variant_for(preset: ModelPreset, dtype: torch.dtype) -> str | None:
    return preset.variant if dtype == torch.float16 else None


def is_on_disk(preset: ModelPreset, dtype: torch.dtype = torch.float16) -> bool:
    if preset.is_local:
        return True
    try:
        snapshot_download(preset.source, allow_patterns=allow_patterns(_variant_for(preset, dtype)), local_files_only=True)
        return True
    except (LocalEntryNotFoundError, OSError, ValueError):
        return False


def _progress_bar(report: Progress | None, label: str) -> type[tqdm]:
    """A tqdm class that forwards the byte count to `report`, as huggingface_hub drives it."""

    class Reporting(tqdm):
        def update(self, n=1):
            done = super().update(n)
            if report and self.total:
                report(min(self.n / self.total, 1.0), f"Downloading {label}")
            return done

    return Reporting


def download(preset: ModelPreset, dtype: torch.dtype, *, offline: bool, report: Progress | None = None) -> Path:
    variant = _variant_for(preset, dtype)
    try:
        return Path(
            snapshot_download(
                preset.source,
                allow_patterns=allow_patterns(variant),
                local_files_only=offline,
                tqdm_class=_progress_bar(report, preset.label),
            )
        )
    except Exception as e:  # no network, no such repo, a proxy's refusal: all need the same advice
        raise ModelUnavailable(
            f"{preset.label} is not on this machine and could not be downloaded now. "
            f"On a connected machine run: {fetch_command(preset, variant)}"
        ) from e


def load_pipeline(
    preset: ModelPreset, device: torch.device, dtype: torch.dtype, *, offline: bool, report: Progress | None = None
) -> DiffusionPipeline:
    folder = Path(preset.source) if preset.is_local else download(preset, dtype, offline=offline, report=report)
    variant = None if preset.is_local else _variant_for(preset, dtype)
    extra = {"safety_checker": None, "requires_safety_checker": False} if preset.family in ("sd15", "sd21") else {}
    try:
        pipe = AutoPipelineForText2Image.from_pretrained(
            folder, dtype=dtype, variant=variant, use_safetensors=True, local_files_only=True, **extra
        )
    except (OSError, ValueError) as e:
        raise AtelierError(f"{preset.label} could not be loaded from {folder.name}: {e}") from e
    return pipe.to(device)


def adapter_folder(adapter: IPAdapter, *, offline: bool) -> Path:
    """A folder holding the adapter weights and its image encoder (fetched if need be)."""
    if Path(adapter.source).is_dir():
        return Path(adapter.source)
    patterns = [f"{adapter.subfolder}/{adapter.weight_name}", f"{adapter.image_encoder}/*"]
    try:
        return Path(snapshot_download(adapter.source, allow_patterns=patterns, local_files_only=offline))
    except Exception as e:
        raise ModelUnavailable(
            f"The image-prompt adapter {adapter.source} is not on this machine and could not be downloaded. "
            f"On a connected machine run: hf download {adapter.source} " + " ".join(f"--include '{p}'" for p in patterns)
        ) from e


def load_inpaint_pipeline(
    preset: ModelPreset, base: DiffusionPipeline, device: torch.device, dtype: torch.dtype, *, offline: bool
) -> DiffusionPipeline:
    """The preset's dedicated inpainting checkpoint, sharing the base model's autoencoder and text encoders."""
    from dataclasses import replace

    from diffusers import AutoPipelineForInpainting

    inpaint = replace(preset, source=preset.inpaint_source, label=f"{preset.label} (inpainting)")
    folder = Path(inpaint.source) if inpaint.is_local else download(inpaint, dtype, offline=offline)
    shared = {k: v for k, v in base.components.items() if k in ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")}
    extra = {"safety_checker": None, "requires_safety_checker": False} if preset.family in ("sd15", "sd21") else {}
    try:
        pipe = AutoPipelineForInpainting.from_pretrained(
            folder, dtype=dtype, variant=None if inpaint.is_local else _variant_for(preset, dtype),
            use_safetensors=True, local_files_only=True, **shared, **extra,
        )
    except (OSError, ValueError) as e:
        raise AtelierError(f"{inpaint.label} could not be loaded from {folder.name}: {e}") from e
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_upscale_pipeline(
    stage: Upscaler, preset: ModelPreset, base: DiffusionPipeline, device: torch.device, dtype: torch.dtype, *, offline: bool
) -> DiffusionPipeline:
    """A model's super-resolution stage: the embedded model's own (sharing the base model's text encoder),
    or one of Stability's upscalers (with their own), known classes only."""
    from dataclasses import replace

    from diffusers import StableDiffusionLatentUpscalePipeline, StableDiffusionUpscalePipeline

    from .pixel_upscale import PixelUpscalePipeline

    known = {c.__name__: c for c in (PixelUpscalePipeline, StableDiffusionUpscalePipeline, StableDiffusionLatentUpscalePipeline)}
    upscaler = replace(preset, source=stage.source, label=f"{preset.label} (×{stage.scale} upscaler)", download_gb=stage.download_gb)
    folder = Path(upscaler.source) if upscaler.is_local else download(upscaler, dtype, offline=offline)
    try:
        name = json.loads((folder / "model_index.json").read_text())["_class_name"]
        if name not in known:
            raise ValueError(f"{name} is not an upscaler Atelier runs")
        shared = {k: base.components[k] for k in ("text_encoder", "tokenizer")} if name == "PixelUpscalePipeline" else {}
        pipe = known[name].from_pretrained(
            folder, dtype=dtype, variant=None if upscaler.is_local else _variant_for(upscaler, dtype),
            use_safetensors=True, local_files_only=True, **shared,
        )
    except (OSError, ValueError, KeyError) as e:
        raise AtelierError(f"{upscaler.label} could not be loaded from {folder.name}: {e}") from e
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
