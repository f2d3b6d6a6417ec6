"""Morph: travel between two captions (or two images) with the noise held fixed, as DALL·E 2 showed.

Caption morph: both prompts are encoded once and their embeddings slerped; every frame starts from the
same noise, so frame 0 is exactly Text to image of A and the last frame exactly B (same seed). Seed
travel slerps the starting noise from seed A to seed B too. Image morph encodes both images, and blends
their latents under one shared noise (a blend of the noised latents, since the noise is common).
The frame renderer is in `pipelines/tasks/morph/render.py`.

Even pacing renders a coarse pass, measures the jump between neighbouring frames, and places the
remaining frames where the jumps are largest, so the morph moves at an even pace.

The GIF and MP4 are made on the front from the frames that come back (`write_animations`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ...front.errors import ValidationError
from ...front.fields import MAX_SEED, clean_text, setting
from ...front.requests import Limits, as_image
from ...front.runner import Output, Task, never
from ..cascade import BackAtSize, back_scale
from ..upscale import UpscaleRequest

MAX_FRAMES = 48


@dataclass(frozen=True, kw_only=True)
class MorphRequest(BackAtSize):
    prompt_b: str = setting("", "text", "To")  # where the caption morph ends (`prompt` is where it starts)
    # −1: the same noise for every frame; otherwise travel from seed to seed_b.
    seed_b: int = setting(-1, "seed", "Travel to seed (−1 = keep the noise)", minimum=-1, maximum=MAX_SEED)
    num_frames: int = setting(8, "int", "Frames", minimum=2, maximum=MAX_FRAMES, step=1, recorded=False)
    even_pacing: bool = setting(True, "bool", "Even pacing", help="place frames where the change is fastest",
                                recorded=False)
    width: int = setting(512, "size", "Width", minimum="min_size", maximum="max_size", step=8, preset="width",
                         recorded=False)
    height: int = setting(512, "size", "Height", minimum="min_size", maximum="max_size", step=8, preset="height",
                          recorded=False)
    image_a: Image.Image | str | None = field(default=None, repr=False)  # image morph: from this picture…
    image_b: Image.Image | str | None = field(default=None, repr=False)  # …to this one
    # Image morph: how far each image is noised before the blend.
    depth: float = setting(0.6, "float", "Depth (how far the images may change)", minimum=0.05, maximum=1.0,
                           step=0.05)
    fps: int = setting(8, "int", "Frames per second", minimum=1, maximum=30, step=1, recorded=False)
    # The animation plays forward, then back.
    pingpong: bool = setting(False, "bool", "Ping-pong", recorded=False)
    num_images: int = 1  # one run renders every frame

    task = "morph"
    prompt_required = False

    @property
    def pipeline(self) -> str:  # type: ignore[override]
        return "txt2img" if self.image_a is None else "img2img"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        given = (self.image_a not in (None, ""), self.image_b not in (None, ""))
        if given[0] != given[1]:
            raise ValidationError("image_a" if given[1] else "image_b", "give both images or neither")
        with_images = given[0]
        clean_text("prompt_b", self.prompt_b, required=not with_images)
        if not with_images and not self.prompt.strip():
            raise ValidationError("prompt", "must not be empty")
        image_a = as_image("image_a", self.image_a, limits) if with_images else None
        image_b = as_image("image_b", self.image_b, limits) if with_images else None
        # Frames are made at the width and height asked; pictures sent larger bring them back larger.
        sent = max(image_a.size, image_b.size, key=max) if with_images else (self.width, self.height)
        upscale = back_scale(sent, (self.width, self.height), limits.cascade_scale)
        return dict(image_a=image_a, image_b=image_b, num_images=1, upscale=upscale)

    def output_size(self) -> tuple[int, int]:
        return self.width * self.upscale, self.height * self.upscale

    def upscaling(self, image: Image.Image) -> UpscaleRequest:
        """A frame between two captions goes through the stage unworded: either caption would pull it."""
        asked = super().upscaling(image)
        between = self.prompt_b.strip() and self.prompt_b.strip() != self.prompt.strip()
        return replace(asked, prompt="", negative_prompt="") if between else asked

    def images_made(self) -> int:
        return self.num_frames

    def texts(self) -> tuple[str, ...]:
        return (*super().texts(), self.prompt_b)  # both ends encode to the same length, so they slerp

    def recipe_fields(self) -> dict[str, Any]:
        fields = super().recipe_fields()
        return {k: v for k, v in fields.items() if k != "depth"} if self.image_a is None else fields


def uniform(n: int) -> list[float]:
    return [i / (n - 1) for i in range(n)]


def run(
    pipe, request: MorphRequest, seeds: list[int], *, on_step=None, should_stop: Callable[[], bool] = never,
    stages: dict | None = None,
) -> Output:
    """Render `request.num_frames` frames from A to B (positions 0 and 1 always included).

    Args:
        pipe: a text-to-image pipeline (caption morph) or image-to-image pipeline (image morph), its
            scheduler set for this request.
        request: the validated request.
        seeds: one seed, the starting noise of every frame (and of A's end).
        stages: where the pictures were sent larger than the frames, the model's stage to bring them back.
    """
    from ...device.upscaling import Cascade
    from .render import Renderer, frame_distance, spacing  # torch: loaded where the work runs

    seed, n = seeds[0], request.num_frames
    cascade = Cascade(stages, request, n, (request.width, request.height), on_step, should_stop)
    render = Renderer(pipe, request, seed, cascade.hook, should_stop)
    if not request.even_pacing or n <= 3:
        positions = uniform(n)
        frames = render(positions)
        ratio = spacing(frames)
        return _frames(cascade, frames, positions, seed, {"uniform_pass": ratio, "final": ratio})
    # 1. Coarse uniform pass with half the frames.
    positions = uniform(max(3, n // 2))
    frames = render(positions)
    before = spacing(frames)
    # 2. Split the largest jumps at their midpoints, a batch at a time, until n frames.
    while len(positions) < n:
        jumps = [frame_distance(a, b) for a, b in zip(frames, frames[1:])]
        want = min(n - len(positions), render.batch, len(jumps))
        widest = sorted(np.argsort(jumps)[::-1][:want])
        new_ts = [(positions[i] + positions[i + 1]) / 2 for i in widest]
        new_frames = render(new_ts)
        merged = sorted(zip(positions + new_ts, frames + new_frames), key=lambda p: p[0])
        positions, frames = [p for p, _ in merged], [f for _, f in merged]
    return _frames(cascade, frames, positions, seed,
                   {"uniform_pass": round(before, 3), "final": round(spacing(frames), 3)})


def _frames(cascade, frames: list[Image.Image], positions: list[float], seed: int, pacing: dict) -> Output:
    """Every frame starts from the same seed (and goes through the stage from it, where there is one); its
    recipe says where along A→B it lies."""
    fields = [{"position": float(t), "spacing": pacing, **cascade.recorded} for t in positions]
    return Output(cascade.finish(frames, [seed] * len(frames)), [seed] * len(frames), fields)


def write_animations(request: MorphRequest, frames: list[Image.Image], folder: Path) -> dict[str, str]:
    """An animated GIF and an MP4 of the frames (small frames are enlarged, pixel-sharp). Front side."""
    import imageio.v3 as iio

    sequence = frames + frames[-2:0:-1] if request.pingpong and len(frames) > 2 else list(frames)
    side = max(frames[0].size)
    scale = max(1, 256 // side)
    sequence = [
        f.convert("RGB").resize((f.width * scale, f.height * scale), Image.Resampling.NEAREST) for f in sequence
    ]
    folder.mkdir(parents=True, exist_ok=True)
    gif, mp4 = folder / "morph.gif", folder / "morph.mp4"
    sequence[0].save(gif, save_all=True, append_images=sequence[1:], duration=int(1000 / request.fps), loop=0)
    # Encoded in this process (PyAV): an encoder started as a process of its own forks the front, and a fork
    # beside Ray's gRPC threads could break it (grpc/grpc#43055). yuv420p is what every browser plays.
    iio.imwrite(mp4, np.stack([np.asarray(f) for f in sequence]), plugin="pyav", fps=request.fps, codec="libx264",
                out_pixel_format="yuv420p")
    return {"gif": str(gif), "mp4": str(mp4)}


TASK = Task(MorphRequest, run, files=write_animations)
