"""The tasks Atelier offers, one module each.

A task module owns everything about its task: its request type (the fields, their checks, the pipeline
it runs on, the size and number of images it makes, the settings its recipes record) and its work on a
pipeline, written like a diffusers `__call__`, ending in `TASK = Task(RequestType, run)`. Task modules
load no torch when imported (their work imports it when it runs), so the front and the UI can import
them. The names below are the registry: the order is the order of the tabs.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

from ..front.requests import Request
from ..front.runner import Task

REGISTERED = (
    "txt2img",
    "variations",
    "morph",
    "inpaint",
    "outpaint",
    "sketch",
    "upscale",
)


class Tasks:
    """The registered tasks, by name (immutable)."""

    def __init__(self, tasks: tuple[Task, ...]):
        self._by_name = {task.name: task for task in tasks}

    def __iter__(self) -> Iterator[Task]:
        return iter(self._by_name.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def get(self, name: str) -> Task:
        try:
            return self._by_name[name]
        except KeyError:
            raise ValueError(f"unknown task {str(name)[:80]!r}; one of {', '.join(self._by_name)}") from None

    def of(self, request: Request) -> Task:
        """The task a request belongs to (its exact type: a subclass is another task)."""
        task = self.get(request.task)
        if type(request) is not task.request:
            raise TypeError(f"{type(request).__name__} is not the {task.name} task's request type")
        return task


TASKS = Tasks(tuple(importlib.import_module(f"{__name__}.{name}").TASK for name in REGISTERED))
