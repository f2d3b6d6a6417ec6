"""Morph: travel between two captions (or two images) with the noise held fixed, as DALL·E 2 showed.

Caption morph: both prompts are encoded once and their embeddings slerped; every frame starts from the
same noise, so frame 0 is exactly Text to image of A and the last frame exactly B (same seed). Seed
travel slerps the starting noise from seed A to seed B too. Image morph encodes both images, and blends
their latents under one shared noise (a blend of the noised latents, since the noise is common).

Even pacing renders a coarse pass, measures the jump between neighbouring frames, and places the
remaining frames where the jumps are largest, so the morph moves at an even pace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from .requests import MorphRequest
from .sampling import StepHook, generators, step_callback

BATCH = 8  # frames per denoising call; batching is where the morph saves time


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


@dataclass(frozen=True)
class Morph:
    frames: list[Image.Image]
    positions: list[float]
    spacing: dict  # {"uniform_pass": ratio of the coarse uniform pass, "final": ratio of the result}


class _Renderer:
    """Renders frames at positions t ∈ [0, 1], reusing the prompt embeddings and the noise."""

    def __init__(self, pipe: DiffusionPipeline, request: MorphRequest, seed: int, on_step, should_stop):
        self.pipe, self.request, self.seed = pipe, request, seed
        self.on_step, self.should_stop = on_step, should_stop
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
        for start in range(0, len(middle), BATCH):
            chunk = middle[start : start + BATCH]
            rendered.update(zip(chunk, self._batch(chunk)))
        return [rendered[t] for t in positions]

    def _batch(self, ts: list[float]) -> list[Image.Image]:
        r, pipe = self.request, self.pipe
        embeds = torch.cat([slerp(self.a, self.b, t) for t in ts])
        common = dict(
            prompt_embeds=embeds,
            negative_prompt_embeds=self.neg.expand(len(ts), -1, -1) if self.cfg else None,
            num_inference_steps=r.steps,
            guidance_scale=r.guidance_scale,
            callback_on_step_end=step_callback(self.on_step, self.should_stop),
            callback_on_step_end_tensor_inputs=["latents"],
        )
        if r.image_a is None:
            latents = torch.cat([slerp(self.noise_a, self.noise_b, t) for t in ts])
            return list(pipe(latents=latents, width=r.width, height=r.height, generator=self._step_noise(ts), **common).images)
        latents = torch.cat([(1 - t) * self.latent_a + t * self.latent_b for t in ts])
        return list(pipe(image=latents, strength=r.depth, generator=generators([self.seed] * len(ts)), **common).images)


def _uniform(n: int) -> list[float]:
    return [i / (n - 1) for i in range(n)]


def morph(
    pipe: DiffusionPipeline,
    request: MorphRequest,
    seed: int,
    *,
    on_step: StepHook | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Morph:
    """Render `request.num_frames` frames from A to B (positions 0 and 1 always included)."""
    render = _Renderer(pipe, request, seed, on_step, should_stop)
    n = request.num_frames
    if not request.even_pacing or n <= 3:
        positions = _uniform(n)
        frames = render(positions)
        ratio = spacing(frames)
        return Morph(frames, positions, {"uniform_pass": ratio, "final": ratio})
    # 1. Coarse uniform pass with half the frames.
    positions = _uniform(max(3, n // 2))
    frames = render(positions)
    before = spacing(frames)
    # 2. Split the largest jumps at their midpoints, a batch at a time, until n frames.
    while len(positions) < n:
        jumps = [frame_distance(a, b) for a, b in zip(frames, frames[1:])]
        want = min(n - len(positions), BATCH, len(jumps))
        widest = sorted(np.argsort(jumps)[::-1][:want])
        new_ts = [(positions[i] + positions[i + 1]) / 2 for i in widest]
        new_frames = render(new_ts)
        merged = sorted(zip(positions + new_ts, frames + new_frames), key=lambda p: p[0])
        positions, frames = [p for p, _ in merged], [f for _, f in merged]
    return Morph(frames, positions, {"uniform_pass": round(before, 3), "final": round(spacing(frames), 3)})


def write_animations(frames: list[Image.Image], folder: Path, fps: int = 8, pingpong: bool = False) -> dict[str, str]:
    """An animated GIF and an MP4 of the frames (small frames are enlarged, pixel-sharp)."""
    import imageio.v3 as iio

    sequence = frames + frames[-2:0:-1] if pingpong and len(frames) > 2 else list(frames)
    side = max(frames[0].size)
    scale = max(1, 256 // side)
    sequence = [f.convert("RGB").resize((f.width * scale, f.height * scale), Image.Resampling.NEAREST) for f in sequence]
    folder.mkdir(parents=True, exist_ok=True)
    gif, mp4 = folder / "morph.gif", folder / "morph.mp4"
    sequence[0].save(gif, save_all=True, append_images=sequence[1:], duration=int(1000 / fps), loop=0)
    iio.imwrite(mp4, np.stack([np.asarray(f) for f in sequence]), fps=fps, codec="libx264", macro_block_size=16)
    return {"gif": str(gif), "mp4": str(mp4)}
