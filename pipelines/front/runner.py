"""The runner seam: between the front (validation, recipes, saving, the browser) and the device work
(the manager, its lock, the pipelines).

What crosses is plain, picklable data: a task's name, a validated request and its seeds go in; progress
events (a step count, a message, now and then a preview picture) and an `Output` (images and the
settings each was made with) come out. The device side writes no files. So a runner may do its work in
this process (`LocalRunner`) or on other machines, and the front does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

if TYPE_CHECKING:
    from .jobs import Job
    from .requests import Request


def never() -> bool:
    """The default `should_stop` of a task's work: nobody asks it to stop."""
    return False


@dataclass(frozen=True)
class Output:
    """What a task's work hands back: its images, the seed each came from, and per-image settings for
    its recipe (the strength used, a seam score, a frame's position…)."""

    images: list[Image.Image]
    seeds: list[int]  # one per image
    fields: list[dict[str, Any]] = field(default_factory=list)  # one per image, or none at all
    notices: tuple[str, ...] = ()  # what the person should know (a prompt cut short…)

    def fields_of(self, index: int) -> dict[str, Any]:
        return self.fields[index] if self.fields else {}


@dataclass(frozen=True)
class Task:
    """One task: its request type and the work it runs on a pipeline.

    `run(pipe, request, seeds, *, on_step, should_stop) -> Output` runs where the accelerator is;
    `files(request, images, folder) -> {kind: path}` runs on the front, for what a task makes of its
    images besides the PNGs (Morph's GIF and MP4).
    """

    request: type[Request]
    run: Callable[..., Output]
    files: Callable[[Any, list[Image.Image], Path], dict[str, str]] | None = None

    @property
    def name(self) -> str:
        return self.request.task


@dataclass(frozen=True)
class ModelState:
    """One model as the residency panel shows it."""

    model: str
    state: str  # "resident", "load from disk", "download" or "not available offline"
    device: str = ""
    dtype: str = ""
    megabytes: float = 0.0
    pinned: bool = False
    download_gb: float = 0.0  # about how much choosing it downloads (state "download")


class Runner(Protocol):
    """Where the device work happens. Every method takes and returns plain data."""

    capacity: int  # jobs it does at once: the front lets this many through

    def submit(self, task: str, request: Request, seeds: list[int]) -> Job[Output]:
        """Start the named task's work on a validated request; the job streams progress, can be
        cancelled, and ends with an Output (or the error that stopped it)."""

    def models(self) -> list[ModelState]:
        """Every model this runner can serve, resident or not."""

    def unload(self, model: str) -> bool:
        """Free a resident model; False when it was not resident."""

    def pin(self, model: str, pinned: bool) -> None:
        """Keep a resident model loaded whatever the memory budget (or stop keeping it)."""

    def close(self) -> None:
        """Stop taking work; the running job stops at its next step (the app is closing)."""
