"""Upscale: a picture made two or four times larger, with the detail a small picture cannot hold.

The model's own super-resolution stage does it where it has one (the embedded model's, trained as
Imagen's cascade is; Stability's ×4 and ×2 upscalers for SD 1.x/2.x); a model without one gets
AUTOMATIC1111's "hires fix": the picture resized, then redrawn image to image at a low strength. "New
detail" is how freely either may invent: the noise-augmentation level of a super-resolution stage (as a
share of its range), the strength of a hires pass. Pictures larger than one tile are done tile by tile
with blended seams, so memory stays that of one tile whatever the size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..front.errors import ValidationError
from ..front.fields import setting
from ..front.requests import MAX_GUIDANCE, MAX_STEPS, Limits, Request, as_image
from ..front.runner import Output, Task, never

SCALES = (2, 4)
MAX_UPSCALED_SIDE = 4096  # a print at 300 dpi of about 35 cm; beyond it, a smaller picture or ×2


@dataclass(frozen=True, kw_only=True)
class UpscaleRequest(Request):
    image: Image.Image | str | None = field(default=None, repr=False)  # the picture, or an uploaded file's path
    scale: int = setting(4, "int", "Scale", minimum=2, maximum=4, step=2, help="×2 or ×4 the picture's sides",
                         a1111="upscaling_resize")
    new_detail: float = setting(0.0, "float", "New detail", minimum=0.0, maximum=1.0, step=0.01,
                                preset="upscale_detail", a1111="denoising_strength",
                                help="0 = only sharpen what is there · 1 = redraw freely")
    # The upscaler's own sampling defaults, not the model's.
    steps: int = setting(4, "int", "Steps", minimum=1, maximum=MAX_STEPS, step=1, recorded=False, a1111="steps",
                         preset="upscale_steps")
    guidance_scale: float = setting(0.0, "float", "Guidance (how closely to follow the prompt)", minimum=0.0,
                                    maximum=MAX_GUIDANCE, step=0.5, recorded=False, a1111="cfg_scale",
                                    preset="upscale_guidance")
    scheduler: str = setting("Euler a", "choice", "Scheduler", choices="schedulers", recorded=False,
                             a1111="sampler_name", preset="upscale_scheduler")

    task = "upscale"
    edits = "image"
    prompt_required = False  # the picture says what it is; a prompt (prefilled from its recipe) helps

    @property
    def pipeline(self) -> str:
        """The model's stage for this scale (the manager falls back to a larger one, or to image to image)."""
        return f"upscale{self.scale}"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        if self.scale not in SCALES:
            raise ValidationError("scale", f"scale must be 2 or 4, not {self.scale}")
        if self.loras:
            raise ValidationError("loras", "LoRAs change how the model draws, not how it upscales: remove them here")
        image = as_image("image", self.image, limits).convert("RGB")
        side = max(image.size) * self.scale
        if side > MAX_UPSCALED_SIDE:
            raise ValidationError(
                "image", f"{image.width}×{image.height} ×{self.scale} would be {side} pixels wide; "
                f"{MAX_UPSCALED_SIDE} is the most (try ×2, or a smaller picture)")
        return dict(image=image)

    def output_size(self) -> tuple[int, int]:
        return self.image.width * self.scale, self.image.height * self.scale


def run(
    pipe, request: UpscaleRequest, seeds: list[int], *, on_step=None, should_stop: Callable[[], bool] = never
) -> Output:
    """One upscaled picture per seed.

    Args:
        pipe: the model's super-resolution stage for this scale (or a larger one), or its image-to-image
            pipeline for a hires pass; its scheduler set for this request.
        request: the validated request; `image` is an RGB picture within the size limits.
    """
    from ..device.upscaling import upscale  # torch: loaded where the work runs

    images = [upscale(pipe, request, seed, on_step, should_stop) for seed in seeds]
    return Output(images, seeds)


TASK = Task(UpscaleRequest, run)
