"""Jobs: a handle on work that runs elsewhere, streaming progress and ending with an outcome.

A web handler cannot interrupt a busy function, so the work runs on another thread (or machine) and
talks to whoever waits through a queue of `Progress` events; cancelling sets the job's own Event, which
the work checks every denoising step. Each job has its own Event, so one person's Stop never touches
another's job. `then()` derives the job the front hands out: the same events and Stop, and a result
made from the work's outcome (recipes, saved files) once, by the first caller that waits for it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from PIL import Image

from .errors import AtelierError, Cancelled, ValidationError
from .recipe import Recipe

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    preview: Image.Image | None = None
    message: str = ""
    phase: str = ""  # what these steps are, where not the run's own sampling ("Upscaling": a cascade's stage)


@dataclass(frozen=True)
class Result:
    images: list[Image.Image]
    recipes: list[Recipe]
    notices: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # e.g. {"gif": path, "mp4": path}
    pngs: list[bytes] = field(default_factory=list)  # each image's file as saved: recipe inside, signed where credentials are on


_DONE = object()
log = logging.getLogger("atelier")


class Job(Generic[T]):
    def __init__(self, *, events: queue.Queue | None = None, cancel: threading.Event | None = None):
        self._events: queue.Queue = queue.Queue() if events is None else events
        self._cancel = threading.Event() if cancel is None else cancel
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._outcome: Callable[[float | None], T] | None = None  # a derived job's result, made on demand
        self._value: Any = None
        self._error: BaseException | None = None

    # -- the side that does the work ------------------------------------------------------------------

    def run(self, work: Callable[[], T]) -> None:
        """Do `work` here and keep its outcome (or error) for whoever waits."""
        try:
            self._value = work()
        except BaseException as e:  # handed to whoever waits on the job
            self._error = e
        finally:
            self._finished.set()
            self._events.put(_DONE)

    def report(self, step: int, total: int, preview: Image.Image | None = None, message: str = "",
               phase: str = "") -> None:
        self._events.put(Progress(step, total, preview, message, phase))

    def stop_requested(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise `Cancelled` if Stop was pressed (while the job waited for the accelerator, say)."""
        if self._cancel.is_set():
            raise Cancelled()

    # -- the side that waits --------------------------------------------------------------------------

    def events(self) -> Iterator[Progress]:
        """Progress events until the work ends (then `result()` has the outcome)."""
        while True:
            event = self._events.get()
            if event is _DONE:
                return
            yield event

    def latest(self, timeout: float) -> tuple[Progress | None, bool]:
        """The newest event after waiting up to `timeout` s (older ones dropped), and whether the work ended."""
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

    def result(self, timeout: float | None = None) -> T:
        if self._outcome is not None:
            self._derive(timeout)
        elif not self._finished.wait(timeout):
            raise TimeoutError("job still running")
        if self._error is not None:
            raise self._error
        return self._value

    def cancel(self) -> None:
        self._cancel.set()

    def then(self, finish: Callable[[T], U]) -> Job[U]:
        """A job with the same progress and Stop whose result is `finish(this job's result)`."""
        derived: Job[U] = Job(events=self._events, cancel=self._cancel)
        derived._outcome = lambda timeout: finish(self.result(timeout))
        return derived

    def _derive(self, timeout: float | None) -> None:
        with self._lock:  # made once, by the first caller; later callers get the same outcome
            if self._finished.is_set():
                return
            assert self._outcome is not None
            try:
                self._value = self._outcome(timeout)
            except TimeoutError:
                raise
            except BaseException as e:
                self._error = e
            self._finished.set()


def is_expected(error: BaseException) -> bool:
    """A refusal, Stop, or a condition a person can act on (a model not on disk, too little memory)."""
    return isinstance(error, (AtelierError, ValidationError, MemoryError)) or type(error).__name__ == "OutOfMemoryError"


def log_failure(error: BaseException) -> None:
    """Log a failed job once: anything unexpected with its own traceback (it is a bug), an expected
    failure as one line, Stop not at all."""
    if isinstance(error, Cancelled):
        return
    if is_expected(error):
        log.warning("%s", str(error).splitlines()[0] if str(error) else type(error).__name__)
    else:
        log.error("A job failed", exc_info=error)


def friendly(error: BaseException) -> str:
    """The message a person sees for a failed job."""
    if isinstance(error, (AtelierError, ValidationError)):
        return str(error)
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return "Out of memory: try a smaller size or fewer images."
    return f"Something went wrong ({type(error).__name__}). The error was logged; try again."
