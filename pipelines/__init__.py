"""Atelier's back end: the studio front, requests, jobs, recipes, models — and, behind the runner seam,
the device work.

This package's own names (below) are the surface the UI may use. Importing it loads no torch: the
manager, the runner that does the device work and the task modules' work load it where they are used.
Every registered task's request type is part of the surface too (`from pipelines import SketchRequest`),
read from the task registry, so a new task needs no line here.
"""

from .front.credentials import describe as describe_credentials
from .front.errors import AtelierError, Cancelled, ModelUnavailable, ValidationError
from .front.fields import Setting, settings_of
from .front.jobs import Job, Progress, Result, friendly, log_failure
from .front.library import Library, NoRecipe, NotFound, recipe_differences, step_label
from .front.outputs import write_whole
from .front.recipe import Recipe, image_id, read_recipe
from .front.registry import ModelPreset, Registry
from .front.requests import Limits, Request
from .front.runner import ModelState, Output, Runner, Task
from .front.studio import Studio
from .front.styles import Style, StyleBook
from .tasks import TASKS

__all__ = [
    "TASKS",
    "AtelierError",
    "Cancelled",
    "Job",
    "Library",
    "Limits",
    "ModelPreset",
    "ModelState",
    "ModelUnavailable",
    "NoRecipe",
    "NotFound",
    "Output",
    "Progress",
    "Recipe",
    "Registry",
    "Request",
    "Result",
    "Runner",
    "Setting",
    "Studio",
    "Style",
    "StyleBook",
    "Task",
    "ValidationError",
    "describe_credentials",
    "friendly",
    "image_id",
    "log_failure",
    "read_recipe",
    "recipe_differences",
    "settings_of",
    "step_label",
    "write_whole",
]


def __getattr__(name: str) -> type[Request]:
    """The request type of any registered task, by its class name."""
    for task in TASKS:
        if task.request.__name__ == name:
            return task.request
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
