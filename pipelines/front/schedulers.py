"""Schedulers: the one table of the samplers Atelier offers, read by validation, the registry and the UI.

A name stands for a diffusers scheduler class and the config overrides that make it that sampler. Every
run gets a fresh instance built from the model's own scheduler config (`fresh_scheduler`, on the device
side): schedulers carry state, and `from_pipe` views share one scheduler object. This module is plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Sampler:
    cls: str  # the diffusers scheduler class
    overrides: Mapping[str, Any] = field(default_factory=dict)  # config values that make it this sampler


SCHEDULERS: Mapping[str, Sampler] = MappingProxyType(
    {
        "Euler a": Sampler("EulerAncestralDiscreteScheduler"),
        "Euler": Sampler("EulerDiscreteScheduler"),
        "DPM++ 2M": Sampler("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
        "DPM++ 2M Karras": Sampler(
            "DPMSolverMultistepScheduler", {"use_karras_sigmas": True, "algorithm_type": "dpmsolver++"}
        ),
        "DDIM": Sampler("DDIMScheduler", {"clip_sample": False}),  # latents are not images: never clip them
        "UniPC": Sampler("UniPCMultistepScheduler"),
    }
)
NAMES: tuple[str, ...] = tuple(SCHEDULERS)
DISTILLED = ("Euler a", "Euler")  # what one-to-four-step (Turbo) models are sampled with


def check_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` if every one is in the table; a preset offering anything else is a mistake in the code."""
    unknown = [n for n in names if n not in SCHEDULERS]
    if unknown:
        raise ValueError(f"unknown scheduler {unknown[0]!r}; the table has: {', '.join(NAMES)}")
    return names
