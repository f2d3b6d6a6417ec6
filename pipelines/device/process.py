"""ProcessRunner: the device work in a process of its own, beside the server's.

A live Gradio server slows small-op torch work in its own process: its event loops wake every
millisecond and take the GIL from the accelerator thread (STACK-NOTES.md; bench/speed.py measures it).
So the app runs its `LocalRunner` — manager, accelerator thread, per-run changes, previews — in a child
process and talks to it through a pipe. What crosses is what crosses every runner seam: a task's name, a
validated request and its seeds in; progress events and an `Output` out, all plain picklable data.

Torch-free on this side: the child imports the device side when it starts.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import pickle
import signal
import threading
from dataclasses import dataclass
from typing import Any

from ..front.errors import AtelierError
from ..front.jobs import Job
from ..front.registry import Registry
from ..front.requests import Request
from ..front.runner import ModelState, Output

log = logging.getLogger("atelier")
CALL_SECONDS = 60  # a residency call (models, unload, pin) waits at most this long for the child


@dataclass(frozen=True)
class DeviceConfig:
    """What the child builds its manager and runner from."""

    registry: Registry
    device: str = "auto"
    dtype: str = "auto"
    memory_budget_bytes: int = 0
    gpu_speed: str = "off"
    offline: bool = False
    vae_tiling_pixels: int = 1024 * 1024


class _ForwardedStop(threading.Event):
    """A job's Stop that also tells the child, where the work checks its own Stop every step."""

    def __init__(self, forward):
        super().__init__()
        self._forward = forward

    def set(self) -> None:
        if not self.is_set():
            super().set()
            self._forward()


class ProcessRunner:
    capacity = 1  # the child runs one job at a time, as a LocalRunner does

    def __init__(self, config: DeviceConfig):
        self._config = config
        self._send_lock, self._start_lock = threading.Lock(), threading.Lock()
        self._ids = itertools.count()
        self._closed = False
        self._start()

    def _start(self) -> None:
        """A child, and the thread that reads its pipe into the jobs and calls it was given (its own: a
        lost child's jobs fail, not the next one's)."""
        self._jobs: dict[int, Job[Output]] = {}
        self._calls: dict[int, tuple[threading.Event, list]] = {}
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no server threads copied in
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, self._config), name="atelier-device", daemon=True)
        self._process.start()
        child.close()
        threading.Thread(target=self._receive, args=(self._pipe, self._jobs, self._calls), name="atelier-device-replies", daemon=True).start()

    def _running(self) -> None:
        """A child lost (the system killed it for memory, say) is started again for the next request, so
        one failure costs the jobs it held, not the session: its models load again on first use."""
        with self._start_lock:
            if not self._closed and not self._process.is_alive():
                log.warning("The model process ended (exit code %s); starting a new one.", self._process.exitcode)
                self._start()

    def submit(self, task: str, request: Request, seeds: list[int]) -> Job[Output]:
        self._running()
        number = next(self._ids)
        job: Job[Output] = Job(cancel=_ForwardedStop(lambda: self._send("cancel", number)))
        self._jobs[number] = job
        self._send("submit", number, task, request, seeds)
        return job

    def models(self) -> list[ModelState]:
        return self._call("models")

    def unload(self, model: str) -> bool:
        return self._call("unload", model)

    def pin(self, model: str, pinned: bool) -> None:
        self._call("pin", model, pinned)

    def close(self) -> None:
        """The running job stops at its next step, the child ends."""
        self._closed = True
        if self._process.is_alive():
            self._send("close")
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()

    # -- the pipe -----------------------------------------------------------------------------------------

    def _send(self, *message: Any) -> None:
        with self._send_lock:
            try:
                self._pipe.send(message)
            except (BrokenPipeError, OSError):
                pass  # the child has ended: whoever waits is told by _receive

    def _call(self, method: str, *args: Any):
        self._running()
        number, answered, answer = next(self._ids), threading.Event(), []
        self._calls[number] = (answered, answer)
        self._send("call", number, method, args)
        if not answered.wait(CALL_SECONDS):
            self._calls.pop(number, None)
            raise AtelierError("The model process did not answer; restart Atelier.")
        kind, value = answer[0]
        if kind == "failed":
            raise value
        return value

    def _receive(self, pipe, jobs: dict, calls: dict) -> None:
        """Hands each message from the child to the job or call it belongs to."""
        while True:
            try:
                kind, number, *rest = pipe.recv()
            except (EOFError, OSError):
                break
            if kind == "progress" and number in jobs:
                jobs[number].report(*rest)
            elif kind in ("done", "failed") and number in jobs:
                job, (value,) = jobs.pop(number), rest
                job.run(lambda value=value, kind=kind: _outcome(kind, value))
            elif kind in ("reply", "refused") and number in calls:
                answered, answer = calls.pop(number)
                answer.append(("failed" if kind == "refused" else "value", rest[0]))
                answered.set()
        lost = AtelierError("The model process ended (out of memory?); try again: the next request starts it anew.")
        for job in list(jobs.values()):
            job.run(lambda: _outcome("failed", lost))
        jobs.clear()
        for answered, answer in list(calls.values()):
            answer.append(("failed", lost))
            answered.set()


def _outcome(kind: str, value: Any):
    if kind == "failed":
        raise value
    return value


def _portable(error: BaseException) -> BaseException:
    """The error itself when it pickles (every AtelierError does), else its type and words."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _serve(pipe, config: DeviceConfig) -> None:
    """The child: a LocalRunner over its own manager, driven by messages until told to close or the
    parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole process group: the parent decides
    # As the app's own start: transformers' warnings that it falls back to PIL without torchvision say
    # nothing a person can act on (a fresh interpreter has not heard the app say so).
    logging.getLogger("transformers.utils.import_utils").setLevel(logging.ERROR)
    from .local import LocalRunner
    from .manager import PipelineManager

    manager = PipelineManager(
        config.registry,
        device=config.device,
        dtype=config.dtype,
        memory_budget_bytes=config.memory_budget_bytes,
        gpu_speed=config.gpu_speed,
        offline=config.offline,
    )
    runner = LocalRunner(manager, vae_tiling_pixels=config.vae_tiling_pixels)
    jobs: dict[int, Job[Output]] = {}
    lock = threading.Lock()

    def send(*message: Any) -> None:
        with lock:
            try:
                pipe.send(message)
            except (BrokenPipeError, OSError):
                pass  # the parent has gone: nobody waits

    def relay(number: int, job: Job[Output]) -> None:
        for event in job.events():
            send("progress", number, event.step, event.total, event.preview, event.message, event.phase)
        try:
            send("done", number, job.result())
        except BaseException as e:  # handed to the parent, which logs it as the in-process runner's would
            send("failed", number, _portable(e))
        jobs.pop(number, None)

    while True:
        try:
            kind, *rest = pipe.recv()
        except (EOFError, OSError):  # the parent ended without a word
            break
        if kind == "submit":
            number, task, request, seeds = rest
            jobs[number] = runner.submit(task, request, seeds)
            threading.Thread(target=relay, args=(number, jobs[number]), daemon=True).start()
        elif kind == "cancel" and rest[0] in jobs:
            jobs[rest[0]].cancel()
        elif kind == "call":
            number, method, args = rest
            try:
                send("reply", number, getattr(runner, method)(*args))
            except Exception as e:
                send("refused", number, _portable(e))
        elif kind == "close":
            break
    runner.close()
