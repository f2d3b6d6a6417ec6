"""Atelier's back end: requests, the studio facade, jobs and recipes.

This import surface is torch-free: the UI imports it without loading any model library. The pieces that
need torch (`pipelines.manager` and the task modules) are imported where they are used.
"""

from .errors import AtelierError, Cancelled, ModelUnavailable
from .jobs import Job, Progress, Result, friendly
from .recipe import Recipe, read_recipe
from .registry import ModelPreset, Registry
from .requests import (
    FILL_MODES,
    SCHEDULERS,
    VARIATION_MODES,
    InpaintRequest,
    Limits,
    MorphRequest,
    OutpaintRequest,
    Txt2ImgRequest,
    ValidationError,
    VariationsRequest,
)
from .settings import Settings, load_settings
from .studio import Studio

__all__ = [
    "FILL_MODES",
    "SCHEDULERS",
    "VARIATION_MODES",
    "AtelierError",
    "Cancelled",
    "InpaintRequest",
    "Job",
    "Limits",
    "ModelPreset",
    "ModelUnavailable",
    "MorphRequest",
    "OutpaintRequest",
    "Progress",
    "Recipe",
    "Registry",
    "Result",
    "Settings",
    "Studio",
    "Txt2ImgRequest",
    "ValidationError",
    "VariationsRequest",
    "friendly",
    "load_settings",
    "read_recipe",
]
