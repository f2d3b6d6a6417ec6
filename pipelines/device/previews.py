"""Live previews while sampling, at almost no cost.

Stable Diffusion families: a fixed linear map from the 4 latent channels to RGB (no weights needed).
Models without one (the embedded model, whose autoencoder is tiny) decode with their own autoencoder.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DiffusionPipeline
from PIL import Image

from ..front.registry import ModelPreset


@torch.no_grad()
def latent_preview(pipe: DiffusionPipeline, latents: torch.Tensor, preset: ModelPreset) -> Image.Image:
    """An RGB picture of the first image in a batch of latents."""
    if hasattr(pipe, "preview"):  # a pipeline that knows its own latents (a pixel-space stage)
        return pipe.preview(latents)
    latent = latents[:1].float()
    if preset.latent_rgb is not None:
        weights = torch.tensor(preset.latent_rgb, dtype=torch.float32, device=latent.device)
        rgb = torch.einsum("bchw,cr->bhwr", latent, weights[:4]) + weights[4]
        array = rgb[0].clamp(0, 1).mul(255).byte().cpu().numpy()
        size = (latent.shape[-1] * 8, latent.shape[-2] * 8)
        return Image.fromarray(array).resize(size, Image.Resampling.BILINEAR)
    vae = pipe.vae
    decoded = vae.decode(latent.to(vae.dtype) / vae.config.scaling_factor).sample
    array = ((decoded[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(array))
