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
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..front.errors import AtelierError, ValidationError
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


@dataclass
class _Child:
    """One model process, its pipe, and the jobs and calls waiting on its answers (a lost child's own:
    they fail with it, not the next child's)."""

    process: Any
    pipe: Any
    jobs: dict[int, Job[Output]] = field(default_factory=dict)
    calls: dict[int, tuple[threading.Event, list]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set when its pipe closed. The kernel closes a killed process's pipe a moment before `is_alive()`
    # can tell, so this, not the exit code, is what says the next request needs a new child.
    ended: threading.Event = field(default_factory=threading.Event)

    def send(self, *message: Any) -> bool:
        """False when the child has ended (after its end every send fails: none is silently lost)."""
        with self.lock:
            try:
                self.pipe.send(message)
                return True
            except (BrokenPipeError, OSError):
                self.ended.set()
                return False


class ProcessRunner:
    capacity = 1  # the child runs one job at a time, as a LocalRunner does

    def __init__(self, config: DeviceConfig):
        self._config = config
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._closed = False
        self._current = self._start()

    def _start(self) -> _Child:
        """A child, and the thread that hands its answers to its jobs and calls."""
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no server threads copied in
        pipe, end = context.Pipe()
        process = context.Process(target=_serve, args=(end, self._config), name="atelier-device", daemon=True)
        process.start()
        end.close()
        child = _Child(process, pipe)
        threading.Thread(target=_receive, args=(child,), name="atelier-device-replies", daemon=True).start()
        return child

    def _child(self) -> _Child:
        """The child to send to. One that was lost (the system killed it for memory, say) is replaced, so
        one failure costs the jobs it held, not the session: its models load again on first use."""
        with self._lock:
            if self._closed:
                raise AtelierError("Atelier is closing.")
            lost = self._current
            if lost.ended.is_set() or not lost.process.is_alive():
                lost.process.join(timeout=5)  # reaped, for its exit code
                log.warning("The model process ended (exit code %s); starting a new one.", lost.process.exitcode)
                self._current = self._start()
            return self._current

    def submit(self, task: str, request: Request, seeds: list[int]) -> Job[Output]:
        child, number = self._child(), next(self._ids)
        job: Job[Output] = Job(cancel=_ForwardedStop(lambda: child.send("cancel", number)))
        child.jobs[number] = job
        if not child.send("submit", number, task, request, seeds) and child.jobs.pop(number, None):
            job.run(lambda: _outcome("failed", _lost()))
        return job

    def models(self) -> list[ModelState]:
        return self._call("models")

    def unload(self, model: str) -> bool:
        return self._call("unload", model)

    def pin(self, model: str, pinned: bool) -> None:
        self._call("pin", model, pinned)

    def close(self) -> None:
        """The running job stops at its next step, the child ends; nothing starts another."""
        with self._lock:
            self._closed = True
            child = self._current
        if child.process.is_alive():
            child.send("close")
            child.process.join(timeout=30)
        if child.process.is_alive():
            child.process.kill()

    def _call(self, method: str, *args: Any):
        child, number, answered, answer = self._child(), next(self._ids), threading.Event(), []
        child.calls[number] = (answered, answer)
        if not child.send("call", number, method, args) and child.calls.pop(number, None):
            raise _lost()
        if not answered.wait(CALL_SECONDS):
            child.calls.pop(number, None)
            raise AtelierError(f"The model process did not answer in {CALL_SECONDS} s; try again, or restart Atelier.")
        kind, value = answer[0]
        if kind == "failed":
            raise value
        return value


def _lost() -> AtelierError:
    return AtelierError("The model process ended (out of memory?); try again: the next request starts it anew.")


def _receive(child: _Child) -> None:
    """Hands each message from the child to the job or call it belongs to; when the child ends, every
    one still waiting hears so (each taken out once, by this thread or by the sender that saw the end)."""
    while True:
        try:
            kind, number, *rest = child.pipe.recv()
        except (EOFError, OSError):
            break
        if kind == "progress" and number in child.jobs:
            child.jobs[number].report(*rest)
        elif kind in ("done", "failed") and (job := child.jobs.pop(number, None)):
            job.run(lambda value=rest[0], kind=kind: _outcome(kind, value))
        elif kind in ("reply", "refused") and (waiting := child.calls.pop(number, None)):
            answered, answer = waiting
            answer.append(("failed" if kind == "refused" else "value", rest[0]))
            answered.set()
    child.ended.set()  # before its waiters hear: whoever retries on hearing it gets a new child
    while child.jobs:
        _, job = child.jobs.popitem()
        job.run(lambda: _outcome("failed", _lost()))
    while child.calls:
        _, (answered, answer) = child.calls.popitem()
        answer.append(("failed", _lost()))
        answered.set()


def _outcome(kind: str, value: Any):
    if kind == "failed":
        raise value
    return value


def _portable(error: BaseException) -> BaseException:
    """The error itself when it pickles (every AtelierError does), else its type and words; a bug keeps
    where it happened, as a note (a traceback does not cross the pipe), for the server's log."""
    if not isinstance(error, (AtelierError, ValidationError)):
        error.add_note("In the model process:\n" + "".join(traceback.format_exception(error)).rstrip())
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        portable = RuntimeError(f"{type(error).__name__}: {error}")
        portable.__notes__ = getattr(error, "__notes__", [])
        return portable


def _serve(pipe, config: DeviceConfig) -> None:
    """The child: a LocalRunner over its own manager, driven by messages until told to close or the
    parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole process group: the parent decides
    # As the app's own start: transformers' warnings that it falls back to PIL without torchvision say
    # nothing a person can act on (a fresh interpreter has not heard the app say so).
    logging.getLogger("transformers.utils.import_utils").setLevel(logging.ERROR)
    from .local import LocalRunner
    from .manager import PipelineManager

    try:
        runner = LocalRunner(PipelineManager(config.registry, device=config.device, dtype=config.dtype,
                                             memory_budget_bytes=config.memory_budget_bytes,
                                             gpu_speed=config.gpu_speed, offline=config.offline),
                             vae_tiling_pixels=config.vae_tiling_pixels)
        broken = None
    except Exception as e:  # a device this machine lacks, say: every request is told why, as in-process
        runner, broken = None, _portable(e)
    jobs: dict[int, Job[Output]] = {}
    lock = threading.Lock()
    # Calls (models, unload, pin) wait for the manager's lock, which a running job holds: answered on a
    # thread of their own, they never hold up a Stop or a close behind them.
    calls = ThreadPoolExecutor(1, thread_name_prefix="atelier-device-calls")

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

    def answer(number: int, method: str, args: tuple) -> None:
        try:
            if broken:
                raise broken
            send("reply", number, getattr(runner, method)(*args))
        except Exception as e:
            send("refused", number, _portable(e))

    while True:
        try:
            kind, *rest = pipe.recv()
        except (EOFError, OSError):  # the parent ended without a word
            break
        if kind == "submit" and broken:
            send("failed", rest[0], broken)
        elif kind == "submit":
            number, task, request, seeds = rest
            jobs[number] = runner.submit(task, request, seeds)
            threading.Thread(target=relay, args=(number, jobs[number]), daemon=True).start()
        elif kind == "cancel" and rest[0] in jobs:
            jobs[rest[0]].cancel()
        elif kind == "call":
            calls.submit(answer, *rest)
        elif kind == "close":
            break
    calls.shutdown(wait=False, cancel_futures=True)
    if runner:
        runner.close()
