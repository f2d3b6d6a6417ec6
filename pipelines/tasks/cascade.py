"""Sent larger, back at its size: tasks that work on a picture at the model's own size bring their
results back through the model's super-resolution stage where the model cascades by default.

The embedded model works at 64², a thumbnail; its own results are 256² (Hires starts on). A 256² picture
sent to Variations, Sketch, Inpaint, Outpaint or Morph is worked at 64² and comes back 256² through the same
stage, not 64² or resized. The work runs it (`pipelines.device.upscaling.Cascade`) and its recipe says how
many times larger the results came back ("upscaled").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from PIL import Image

from ..front.requests import Limits, Request, as_image, fit_side
from .upscale import SCALES, UpscaleRequest


def back_scale(sent: tuple[int, int], made: tuple[int, int], most: int) -> int:
    """How many times larger results come back than the model made them: ×4 or ×2 where the picture was
    sent about that much larger than the model works (and its stage goes that far), else 1."""
    ratio = max(sent) / max(made)
    return max((scale for scale in SCALES if scale <= most and ratio >= 0.9 * scale), default=1)


@dataclass(frozen=True, kw_only=True)
class BackAtSize(Request):
    """A task whose work runs on a sent picture at the model's own size, its results brought back larger
    (`upscale` times: the scale, for a picture fitted whole; the most, for a repaint's area, whose work
    decides) through the model's stage."""

    upscale: int = 1  # set by validation (1: as the model made them)
    picture: ClassVar[str] = "image"  # the field of the picture worked on

    def fitted(self, limits: Limits) -> dict[str, Any]:
        """The sent picture fitted to the model's size, and how many times larger its results come back."""
        sent = as_image(self.picture, getattr(self, self.picture), limits)
        fitted = fit_side(sent, limits.native_size)
        return {self.picture: fitted, "upscale": back_scale(sent.size, fitted.size, limits.cascade_scale)}

    def output_size(self) -> tuple[int, int]:
        picture = getattr(self, self.picture)
        return picture.width * self.upscale, picture.height * self.upscale

    def stages(self) -> tuple[str, ...]:
        return (f"upscale{self.upscale}",) if self.upscale > 1 else ()

    def upscaling(self, image: Image.Image) -> UpscaleRequest:
        """The Upscale task's request for one result: this run's words, unguided, at the Upscale task's own
        defaults (the embedded stage's: the only model that cascades by default)."""
        return UpscaleRequest(model=self.model, prompt=self.prompt, negative_prompt=self.negative_prompt, image=image,
                              scale=self.upscale, guidance_scale=0.0)
