"""ZeroGPU on Hugging Face Spaces: the accelerator is lent per call of a function wrapped by `spaces.GPU`.

`spaces.GPU` returns the function unchanged unless `SPACES_ZERO_GPU` is set, so the wrapper is applied
unconditionally; where the `spaces` package is missing it is the identity.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

F = TypeVar("F", bound=Callable)

SECONDS_PER_MEGAPIXEL_STEP = 0.15  # SDXL-size U-Net on a ZeroGPU share, with margin
MIN_SECONDS, MAX_SECONDS = 15, 120


def gpu_seconds(steps: int, width: int, height: int, images: int) -> int:
    """How long to ask ZeroGPU for: proportional to the denoising work, within the Space's limits."""
    work = steps * images * width * height / 1_000_000 * SECONDS_PER_MEGAPIXEL_STEP
    return int(min(max(MIN_SECONDS, 10 + work), MAX_SECONDS))


def on_zerogpu(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this is a ZeroGPU Space (as `spaces` itself reads it)."""
    return environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")


def on_gpu(fn: F, seconds: int) -> F:
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=seconds)(fn)
