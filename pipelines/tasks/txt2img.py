"""Text to image: classifier-free guided sampling from seeded noise, and optionally a cascade.

With "Hires" on, each picture goes on through the model's super-resolution stage (or a hires pass, see
the Upscale task) in the same job: one progress bar over both stages, previews from both, and the recipe
records the upscaling beside the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..front.errors import ValidationError
from ..front.fields import setting
from ..front.requests import MAX_STEPS, Limits, Request
from ..front.runner import Output, Task, never
from .upscale import MAX_UPSCALED_SIDE, SCALES, UpscaleRequest

MAX_FEATURE_REUSE = 5  # from 4 on, two-figure scenes fall apart (bench/reuse.py: 0.98 exact, 0.96 at 3, 0.60 at 4)


@dataclass(frozen=True, kw_only=True)
class Txt2ImgRequest(Request):
    width: int = setting(512, "size", "Width", minimum="min_size", maximum="max_size", step=8, a1111="width",
                         preset="width", recorded=False)
    height: int = setting(512, "size", "Height", minimum="min_size", maximum="max_size", step=8, a1111="height",
                          preset="height", recorded=False)
    # Tames the over-exposed colours of strong guidance (Lin et al. 2023).
    guidance_rescale: float = setting(0.0, "float", "Guidance rescale (0.7 tames over-exposed colours)", minimum=0.0,
                                      maximum=1.0, step=0.05)

    # DeepCache (Ma et al. 2024): the U-Net's deep features change little from step to step, so most steps
    # reuse them and compute only the outermost blocks. Off by default: it changes the picture.
    feature_reuse: int = setting(1, "int", "Fast draft: deep features computed every N steps", minimum=1,
                                 maximum=MAX_FEATURE_REUSE, step=1,
                                 help="1 = exact (off) · 2 ≈ 1.7×, 3 ≈ 2× faster · changes the picture")
    hires: bool = setting(False, "bool", "Hires: upscale in the same run", a1111="enable_hr", preset="cascade",
                          help="the picture goes on through the model's upscaler")
    hires_scale: int = setting(4, "int", "Hires scale", minimum=2, maximum=4, step=2, a1111="hr_scale")
    hires_detail: float = setting(0.0, "float", "Hires new detail", minimum=0.0, maximum=1.0, step=0.01,
                                  preset="upscale_detail", a1111="denoising_strength",
                                  help="0 = only sharpen what is there · 1 = redraw freely")
    hires_steps: int = setting(4, "int", "Hires steps", minimum=1, maximum=MAX_STEPS, step=1,
                               preset="upscale_steps", a1111="hr_second_pass_steps")

    task = "txt2img"
    pipeline = "txt2img"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        if self.width * self.height > limits.max_pixels:
            raise ValidationError("width", f"{self.width}×{self.height} is more than {limits.max_pixels} pixels")
        if self.hires and self.hires_scale not in SCALES:
            raise ValidationError("hires_scale", f"the hires scale must be 2 or 4, not {self.hires_scale}")
        if self.hires and max(self.output_size()) > MAX_UPSCALED_SIDE:
            raise ValidationError("hires_scale", f"{self.width}×{self.height} ×{self.hires_scale} is more than "
                                  f"{MAX_UPSCALED_SIDE} pixels wide: try ×2")
        return {}

    def output_size(self) -> tuple[int, int]:
        scale = self.hires_scale if self.hires else 1
        return self.width * scale, self.height * scale

    def stages(self) -> tuple[str, ...]:
        return (f"upscale{self.hires_scale}",) if self.hires else ()

    @classmethod
    def left_out_when_off(cls) -> dict[str, Any]:
        return {"hires": False, "feature_reuse": 1}

    def recipe_fields(self) -> dict[str, Any]:
        """The hires settings only where the cascade ran, feature reuse only where it was on (an exact
        picture's recipe stays as it was)."""
        off = [name for name, value in self.left_out_when_off().items() if getattr(self, name) == value]
        return {k: v for k, v in super().recipe_fields().items() if not k.startswith(tuple(off))}

    def upscaling(self, image: Image.Image) -> UpscaleRequest:
        """The Upscale task's request for one picture of this run: its words, the hires settings, unguided (the
        stage samples with its own scheduler: this run's sampler is the base model's)."""
        return UpscaleRequest(model=self.model, prompt=self.prompt, negative_prompt=self.negative_prompt,
                              image=image, scale=self.hires_scale, new_detail=self.hires_detail,
                              steps=self.hires_steps, guidance_scale=0.0)


def run(
    pipe, request: Txt2ImgRequest, seeds: list[int], *, on_step=None, should_stop: Callable[[], bool] = never,
    stages: dict | None = None,
) -> Output:
    """Generate one image per seed.

    Args:
        pipe: a text-to-image pipeline, its scheduler already set for this request.
        request: the validated request (prompt, size, steps, guidance…).
        seeds: one seed per image; image i is reproducible alone with seeds[i].
        on_step: called after every denoising step with (step, total, latents).
        should_stop: polled every step; True stops the run with `Cancelled`.
        stages: with hires, the model's upscaling pipeline under its kind.
    """
    from ..device.acceleration import feature_reuse  # torch: loaded where the work runs
    from ..device.sampling import guided
    from ..device.upscaling import Cascade

    # 1. Guidance rescale only where it is asked for; some pipelines lack the argument.
    extra = {"guidance_rescale": request.guidance_rescale} if request.guidance_rescale else {}
    # 2. With hires, one progress bar over both stages: the base steps, then each picture's upscaling.
    cascade = Cascade(stages, request, len(seeds), (request.width, request.height), on_step, should_stop)
    # 3. Sample: noise drawn per image on the CPU from its own seed.
    with feature_reuse(pipe, request.feature_reuse):
        output = pipe(width=request.width, height=request.height, **guided(request, seeds, cascade.hook, should_stop), **extra)
    # 4. Each picture through the upscaler, from the same seed.
    images = cascade.finish(output.images, seeds)
    return Output(images, seeds)


TASK = Task(Txt2ImgRequest, run)
