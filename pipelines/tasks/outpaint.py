"""Outpainting: extend the canvas and paint the new border; the original's pixels are kept exactly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..front.errors import ValidationError
from ..front.fields import setting
from ..front.requests import Limits
from ..front.runner import Output, Task, never
from .inpaint import PaintSettings, repaint
from .masks import extend_canvas

SIDES = ("left", "right", "top", "bottom")
MAX_SIDE = 512  # pixels added on one side at most; the whole canvas is held to the pixel limit too


@dataclass(frozen=True, kw_only=True)
class OutpaintRequest(PaintSettings):
    # Pixels added on each side.
    left: int = setting(0, "int", "Left", minimum=0, maximum=MAX_SIDE, step=8)
    right: int = setting(0, "int", "Right", minimum=0, maximum=MAX_SIDE, step=8)
    top: int = setting(0, "int", "Top", minimum=0, maximum=MAX_SIDE, step=8)
    bottom: int = setting(0, "int", "Bottom", minimum=0, maximum=MAX_SIDE, step=8)

    task = "outpaint"

    def _validated_own(self, limits: Limits) -> dict[str, Any]:
        checked = super()._validated_own(limits)
        image = checked["image"]
        sides = {k: getattr(self, k) for k in SIDES}
        if not any(sides.values()):
            raise ValidationError("left", "extend at least one side by some pixels")
        width, height = self._extended(image.size, sides)
        if width * height > limits.max_pixels:
            raise ValidationError(
                "left", f"the extended canvas {width}×{height} is more than {limits.max_pixels} pixels"
            )
        return checked

    @staticmethod
    def _extended(size: tuple[int, int], sides: dict[str, int]) -> tuple[int, int]:
        return size[0] + sides["left"] + sides["right"], size[1] + sides["top"] + sides["bottom"]

    def output_size(self) -> tuple[int, int]:
        return self._extended(self.image.size, {k: getattr(self, k) for k in SIDES})


def run(
    pipe, request: OutpaintRequest, seeds: list[int], *, on_step=None, should_stop: Callable[[], bool] = never,
    stages: dict | None = None,
) -> Output:
    """Extend `request.image` by the asked pixels on each side and paint the new border, one result per seed."""
    # 1. The larger canvas, its border filled from the image's edges; the mask is that border.
    canvas, mask = extend_canvas(request.image, request.left, request.right, request.top, request.bottom)
    # 2. The original's own pixels are protected exactly, whatever the feather reaches.
    keep = np.zeros((canvas.height, canvas.width), bool)
    keep[request.top : request.top + request.image.height, request.left : request.left + request.image.width] = True
    # 3. Repaint the border.
    return repaint(pipe, request, canvas, mask, 0, seeds, protect=keep, on_step=on_step, should_stop=should_stop,
                   stages=stages)


TASK = Task(OutpaintRequest, run)
