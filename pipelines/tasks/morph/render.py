"""Morph's device work: slerp, the frame renderer, and the distance between neighbouring frames that even
pacing evens out. Loaded by the task's `run` only, where the work runs (torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from ...device.sampling import generators, schedule_length, step_callback

if TYPE_CHECKING:
    from . import MorphRequest


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation over the whole tensor; linear where a and b are almost parallel."""
    a32, b32 = a.float(), b.float()
    cos = (a32.flatten() @ b32.flatten()) / (a32.norm() * b32.norm() + eps)
    cos = cos.clamp(-1, 1)
    if t == 0:
        return a
    if t == 1:
        return b
    if 1 - cos.abs() < 1e-4:
        return ((1 - t) * a32 + t * b32).to(a.dtype)
    theta = torch.arccos(cos)
    out = (torch.sin((1 - t) * theta) * a32 + torch.sin(t * theta) * b32) / torch.sin(theta)
    return out.to(a.dtype)


def frame_distance(a: Image.Image, b: Image.Image) -> float:
    """A cheap perceptual distance: mean Lab difference plus mean edge difference, at 64×64."""

    def features(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        rgb = np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR))
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
        edges = cv2.Laplacian(lab[..., 0], cv2.CV_32F)
        return lab, edges

    (la, ea), (lb, eb) = features(a), features(b)
    return float(np.abs(la - lb).mean() + 0.5 * np.abs(ea - eb).mean())


def spacing(frames: list[Image.Image]) -> float:
    """Max jump ÷ mean jump between neighbouring frames: 1 is a perfectly even pace."""
    jumps = [frame_distance(a, b) for a, b in zip(frames, frames[1:])]
    mean = float(np.mean(jumps)) if jumps else 0.0
    return float(max(jumps) / mean) if mean > 0 else 1.0


class Renderer:
    """Renders frames at positions t ∈ [0, 1], reusing the prompt embeddings and the noise.

    Progress is one count over the whole job, whatever the batches: `num_frames × steps` in all, each
    batch adding its frames × the steps done, so step ÷ steps is how many frames are made.
    """

    batch = 8  # frames per denoising call; batching is where the morph saves time

    def __init__(self, pipe: DiffusionPipeline, request: MorphRequest, seed: int, on_step, should_stop):
        self.pipe, self.request, self.seed = pipe, request, seed
        self.on_step, self.should_stop = on_step, should_stop
        self.frames_done = 0
        self.cfg = request.guidance_scale > 1
        device = pipe._execution_device
        # 1. Encode each prompt once (the negative prompt is shared by both ends).
        self.a, self.neg = pipe.encode_prompt(request.prompt, device, 1, self.cfg, request.negative_prompt)
        self.b, _ = pipe.encode_prompt(request.prompt_b or request.prompt, device, 1, self.cfg, request.negative_prompt)
        # 2. Fixed starting noise, drawn on the CPU exactly as Text to image draws it.
        if request.image_a is None:
            shape = (1, pipe.unet.config.in_channels, request.height // pipe.vae_scale_factor, request.width // pipe.vae_scale_factor)
            dtype = self.a.dtype
            self.noise_a = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=dtype)
            seed_b = request.seed_b if request.seed_b >= 0 else seed
            self.noise_b = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(seed_b), dtype=dtype)
        else:
            # 3. Image morph: both endpoints as latents, blended under the noise img2img adds.
            self.latent_a = self._encode(request.image_a)
            self.latent_b = self._encode(request.image_b)

    def _encode(self, image: Image.Image) -> torch.Tensor:
        pipe, r = self.pipe, self.request
        pixels = pipe.image_processor.preprocess(image.convert("RGB"), height=r.height, width=r.width)
        pixels = pixels.to(pipe._execution_device, pipe.vae.dtype)
        with torch.no_grad():
            latent = pipe.vae.encode(pixels).latent_dist.mean
        return latent * pipe.vae.config.scaling_factor

    def _step_noise(self, ts: list[float]) -> list[torch.Generator]:
        """Generators for ancestral samplers' step noise, advanced past the starting noise exactly as
        Text to image advances them, so the end frames match it even with "Euler a"."""
        seed_b = self.request.seed_b if self.request.seed_b >= 0 else self.seed
        out = generators([seed_b if t == 1 else self.seed for t in ts])
        for g in out:
            randn_tensor(self.noise_a.shape, generator=g, dtype=self.noise_a.dtype)
        return out

    def __call__(self, positions: list[float]) -> list[Image.Image]:
        """Frames at `positions`; the two ends are rendered alone, as Text to image renders them, so
        they match it pixel for pixel (batched arithmetic may differ in the last bit)."""
        ends = [t for t in positions if t in (0.0, 1.0)]
        middle = [t for t in positions if t not in (0.0, 1.0)]
        rendered = {t: frame for t in ends for frame in self._batch([t])}
        for start in range(0, len(middle), self.batch):
            chunk = middle[start : start + self.batch]
            rendered.update(zip(chunk, self._batch(chunk)))
        return [rendered[t] for t in positions]

    def _progress(self, frames: int):
        """This batch's step hook, counting over the whole job (see the class)."""
        if self.on_step is None:
            return None
        done, total_frames = self.frames_done, self.request.num_frames

        def on_step(step: int, steps: int, latents) -> None:
            self.on_step(done * steps + step * frames, total_frames * steps, latents)

        return on_step

    def _batch(self, ts: list[float]) -> list[Image.Image]:
        r, pipe = self.request, self.pipe
        embeds = torch.cat([slerp(self.a, self.b, t) for t in ts])
        common = dict(
            prompt_embeds=embeds,
            negative_prompt_embeds=self.neg.expand(len(ts), -1, -1) if self.cfg else None,
            num_inference_steps=r.steps,
            guidance_scale=r.guidance_scale,
            callback_on_step_end=step_callback(self._progress(len(ts)), self.should_stop),
            callback_on_step_end_tensor_inputs=["latents"],
        )
        if r.image_a is None:
            latents = torch.cat([slerp(self.noise_a, self.noise_b, t) for t in ts])
            frames = pipe(latents=latents, width=r.width, height=r.height, generator=self._step_noise(ts), **common)
        else:
            latents = torch.cat([(1 - t) * self.latent_a + t * self.latent_b for t in ts])
            common["num_inference_steps"] = schedule_length(r.steps, r.depth)  # at least one denoising step
            frames = pipe(image=latents, strength=r.depth, generator=generators([self.seed] * len(ts)), **common)
        self.frames_done += len(ts)
        return list(frames.images)
