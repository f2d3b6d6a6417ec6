"""Jobs: one request's work on a worker thread, streaming progress and ending with a result.

A web handler cannot interrupt a busy function, so the pipeline runs on its own thread and talks to the
handler through a queue; cancelling sets the job's own Event, which the step callback checks. Each job
has its own Event, so one person's Stop never touches another's job.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field

from PIL import Image

from .errors import AtelierError, Cancelled
from .recipe import Recipe
from .requests import ValidationError


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    preview: Image.Image | None = None
    message: str = ""


@dataclass(frozen=True)
class Result:
    images: list[Image.Image]
    recipes: list[Recipe]
    notices: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # e.g. {"gif": path, "mp4": path}


class JobContext:
    """What the work function sees: a way to report progress and to learn it was cancelled."""

    def __init__(self, events: queue.Queue, cancelled: threading.Event):
        self._events = events
        self.cancelled = cancelled

    def report(self, step: int, total: int, preview: Image.Image | None = None, message: str = "") -> None:
        self._events.put(Progress(step, total, preview, message))

    def check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()


_DONE = object()


class Job:
    def __init__(self, work: Callable[[JobContext], Result]):
        self._work = work
        self._events: queue.Queue = queue.Queue()
        self._cancelled = threading.Event()
        self._finished = threading.Event()
        self._result: Result | None = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._result = self._work(JobContext(self._events, self._cancelled))
        except BaseException as e:  # handed to whoever waits on the job
            self._error = e
        finally:
            self._finished.set()
            self._events.put(_DONE)

    def start(self, executor: Executor) -> Job:
        """Queue the work on `executor` (the studio's one accelerator thread)."""
        executor.submit(self._run)
        return self

    def events(self) -> Iterator[Progress]:
        """Progress events until the job ends (then `result()` has the outcome)."""
        while True:
            event = self._events.get()
            if event is _DONE:
                return
            yield event

    def latest(self, timeout: float) -> tuple[Progress | None, bool]:
        """The newest event after waiting up to `timeout` s (older ones dropped), and whether the job ended."""
        newest = None
        try:
            event = self._events.get(timeout=timeout)
            while True:
                if event is _DONE:
                    return newest, True
                newest = event
                event = self._events.get_nowait()
        except queue.Empty:
            return newest, False

    def result(self, timeout: float | None = None) -> Result:
        if not self._finished.wait(timeout):
            raise TimeoutError("job still running")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def done(self) -> bool:
        return self._finished.is_set()


def friendly(error: BaseException) -> str:
    """The message a person sees for a failed job."""
    if isinstance(error, (AtelierError, ValidationError)):
        return str(error)
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return "Out of memory: try a smaller size or fewer images."
    return f"Something went wrong ({type(error).__name__}). The error was logged; try again."
