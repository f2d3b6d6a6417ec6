"""ClusterRunner: the device work on a Ray Serve cluster of model workers, behind the same runner seam.

The front (the Studio in this process) still validates, draws the seeds, writes the recipes and saves
the files; each job's task name, request and seeds go to a model worker (`pipelines/device/worker.py`) through
a `DeploymentHandle`, routed to a worker that holds the request's model, and the worker streams back
which worker took it, the progress events with their previews, and the `Output`.

- **Stop**: the job's Stop is a `RemoteStop`, which cancels the remote call as it is set; the worker's
  job then ends at its next denoising step. Stopping a job still waiting for a worker withdraws it.
- **A lost worker**: when a worker dies mid-job the job starts again once on another; a second loss is
  answered "The worker was lost; try again." The front keeps serving either way.
- **Waiting**: a job says it waits for a free worker until one takes it (the router holds waiting
  jobs, so whichever worker frees up first takes the next).

`start_cluster` connects to Ray (or starts it on this machine), deploys the workers unless the cluster
already runs them (`serve deploy deploy/atelier.yaml`), and says what it waits for while it does.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import ray
from ray import serve
from ray.exceptions import RayActorError, RayTaskError, TaskCancelledError

from ..front.errors import AtelierError, Cancelled
from ..front.jobs import Job
from ..front.requests import Request
from ..front.runner import ModelState, Output
from .worker import APP, DEPLOYMENT, ModelWorker, Started, WorkerConfig

ROOT = Path(__file__).resolve().parents[2]  # the project: what the workers import
LOST = "The worker was lost; try again."
WAITING = "Waiting for a free worker…"
ON_WORKER = "Running on worker {}"
RETRYING = "The worker was lost; starting again on another…"
CONTROL_SECONDS = 60  # a question to every worker waits at most this long (a busy one answers after its job)
PROBE_SECONDS = 5  # how long an address may take to answer before it counts as unreachable

log = logging.getLogger(__name__)
Say = Callable[[str], None]


class ClusterUnavailable(AtelierError):
    """Ray or the model workers cannot be reached or started; the message says what to do."""


@dataclass(frozen=True)
class ClusterSpec:
    """Where the workers run and how many there are."""

    address: str  # "local": start Ray on this machine; else a Ray address: "auto", "host:6379", "ray://host:10001"
    replicas: int = 0  # workers; 0 = one per GPU, one on a cluster without GPUs
    min_replicas: int = 0  # autoscaling: fewest workers (with max_replicas)
    max_replicas: int = 0  # autoscaling: most workers; 0 = a fixed number of workers
    cpus_per_replica: float = 0  # without GPUs: cores per worker; 0 shares the cluster's cores evenly

    @property
    def autoscaling(self) -> bool:
        return self.max_replicas > 0


class RemoteStop(threading.Event):
    """A job's Stop that also cancels the remote call doing the job's work, at once, wherever `cancel()`
    is called from: the Studio hands out derived jobs that share this Event."""

    def __init__(self) -> None:
        super().__init__()
        self._guard = threading.Lock()
        self._call = None

    def follow(self, call) -> None:
        """Cancel `call` when Stop is pressed (at once if it already was); None: nothing to cancel."""
        with self._guard:
            self._call = call
        if call is not None and self.is_set():
            call.cancel()

    def set(self) -> None:
        super().set()
        with self._guard:
            call = self._call
        if call is not None:
            call.cancel()


class ClusterRunner:
    """A `Runner` whose work runs on the model workers of a Ray Serve application."""

    def __init__(self, handle, *, capacity: int, owns_ray: bool):
        self.capacity = capacity  # jobs the workers do at once: the front lets this many through
        self._run = handle.options(method_name="run", stream=True)
        self._handle = handle
        self._owns_ray = owns_ray  # started here, so stopped here
        self._jobs: set[threading.Thread] = set()
        self._guard = threading.Lock()
        self._closed = False

    def submit(self, task: str, request: Request, seeds: list[int]) -> Job[Output]:
        if self._closed:
            raise AtelierError("The studio is shutting down.")
        stop = RemoteStop()
        job: Job[Output] = Job(cancel=stop)
        job.report(0, 0, message=WAITING)
        thread = threading.Thread(
            target=self._follow, args=(job, partial(self._work, job, stop, task, request, seeds)), daemon=True
        )
        with self._guard:
            self._jobs.add(thread)
        thread.start()
        return job

    def _follow(self, job: Job[Output], work: Callable[[], Output]) -> None:
        try:
            job.run(work)
        finally:
            with self._guard:
                self._jobs.discard(threading.current_thread())

    def _work(self, job: Job[Output], stop: RemoteStop, task: str, request: Request, seeds: list[int]) -> Output:
        """Run the job on a worker holding its model; once more on another if that worker is lost."""
        for attempt in range(2):
            call = self._run.options(multiplexed_model_id=request.model).remote(task, request, seeds)
            stop.follow(call)
            try:
                output = self._relay(job, call)
            finally:
                stop.follow(None)
            if output is not None:
                return output
            if job.stop_requested():
                raise Cancelled()
            log.warning("a worker was lost during a %s job (attempt %d)", task, attempt + 1)
            if attempt == 0:
                job.report(0, 0, message=RETRYING)
        raise AtelierError(LOST)

    @staticmethod
    def _relay(job: Job[Output], call) -> Output | None:
        """Pass the worker's stream on to the job: its Output, or None when the worker was lost."""
        try:
            for item in call:
                if isinstance(item, Output):
                    return item
                if isinstance(item, Started):
                    job.report(0, 0, message=ON_WORKER.format(item.worker))
                else:
                    job.report(item.step, item.total, item.preview, item.message, item.phase)
        except (TaskCancelledError, concurrent.futures.CancelledError):  # Serve's RequestCancelledError too
            raise Cancelled() from None
        except RayTaskError as e:
            # The work itself failed: the person sees its own message (an AtelierError says what to do).
            raise e.cause if isinstance(e.cause, Exception) else AtelierError(LOST) from None
        except RayActorError:
            return None
        return None  # the stream ended without an output: its worker died mid-job

    def models(self) -> list[ModelState]:
        return merge_models(self._ask_every_worker("models"))

    def unload(self, model: str) -> bool:
        return any(self._ask_every_worker("unload", model))

    def pin(self, model: str, pinned: bool) -> None:
        self._ask_every_worker("pin", model, pinned)

    def _ask_every_worker(self, method: str, *args) -> list:
        try:
            return self._handle.broadcast(method, *args).results(timeout_s=CONTROL_SECONDS)
        except TimeoutError:
            raise AtelierError(f"The workers did not answer within {CONTROL_SECONDS} s; try again.") from None

    def close(self) -> None:
        """Take no more jobs, let the running ones end, and stop Ray if it was started here (once)."""
        if self._closed:
            return
        self._closed = True
        with self._guard:
            running = list(self._jobs)
        for thread in running:
            thread.join(timeout=CONTROL_SECONDS)
        if self._owns_ray:
            serve.shutdown()
            ray.shutdown()


def merge_models(per_worker: list[list[ModelState]]) -> list[ModelState]:
    """One row per model for the residency panel: resident where any worker holds it (and on how many),
    otherwise what loading it costs."""
    if not per_worker:
        return []
    rows = []
    for index, first in enumerate(per_worker[0]):
        held = [states[index] for states in per_worker if states[index].state == "resident"]
        if not held:
            rows.append(first)
            continue
        rows.append(
            replace(
                held[0],
                device=f"{held[0].device} × {len(held)} of {len(per_worker)} workers",
                pinned=any(s.pinned for s in held),
            )
        )
    return rows


def start_cluster(
    spec: ClusterSpec, config: WorkerConfig, *, say: Say = print, ready_seconds: float = 600
) -> ClusterRunner:
    """Connect to Ray (or start it here), make sure the model workers run, and return their runner.
    Raises `ClusterUnavailable` with what to do when Ray or the workers cannot be had."""
    started = time.monotonic()
    owns_ray = spec.address == "local"
    _connect(spec, say)
    try:
        serve.start(proxy_location="Disabled")  # the front talks to the workers through handles only
        running = _running_workers()
        if running and not owns_ray:
            say(f"Using the {running} model workers already running on the cluster as '{APP}'.")
            capacity = running
        else:
            capacity = _deploy(spec, config, say)
            running = _wait_for_workers(capacity if not spec.autoscaling else spec.min_replicas, say, ready_seconds)
        say(f"{running} model worker(s) ready after {time.monotonic() - started:.0f} s.")
        handle = serve.get_deployment_handle(DEPLOYMENT, app_name=APP)
        return ClusterRunner(handle, capacity=max(capacity, 1), owns_ray=owns_ray)
    except BaseException:
        if owns_ray:
            serve.shutdown()
        ray.shutdown()
        raise


def _connect(spec: ClusterSpec, say: Say) -> None:
    if spec.address == "local":
        cpus = os.cpu_count() or 1
        say(f"Starting a local Ray instance ({cpus} CPU cores)…")
        # The workers are processes on this machine: they import the project from where it lies.
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        runtime_env = {"env_vars": {"PYTHONPATH": path}}
        ray.init(num_cpus=cpus, include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
        return
    say(f"Connecting to the Ray cluster at {spec.address}…")
    _probe(spec.address)
    try:
        # Workers deployed from here get this project's code; the outputs stay on the front.
        ray.init(address=spec.address, runtime_env={"working_dir": str(ROOT), "excludes": [".git", "outputs"]},
                 log_to_driver=False)
    except Exception as e:
        raise ClusterUnavailable(
            f"Could not join the Ray cluster at {spec.address}: {e}. {_what_to_do(spec.address)}"
        ) from None


def _probe(address: str) -> None:
    """Fail fast where nothing listens (Ray itself retries an unreachable address for minutes)."""
    if address == "auto":
        return  # Ray finds the cluster this machine belongs to, or says at once that there is none
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnavailable(f"{address!r} is not a Ray address. {_what_to_do(address)}")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_SECONDS).close()
    except OSError as e:
        raise ClusterUnavailable(
            f"Nothing answers at {address} ({e.strerror or e}). {_what_to_do(address)}"
        ) from None


def _what_to_do(address: str) -> str:
    port = "10001 (Ray Client)" if address.startswith("ray://") else "6379"
    return (
        f"Start the cluster (`ray start --head` on its head node, port {port}), check the address, "
        "use --cluster local to start Ray on this machine, or leave --cluster empty to work in this process."
    )


def _running_workers() -> int:
    app = serve.status().applications.get(APP)
    if app is None or app.status != "RUNNING" or DEPLOYMENT not in app.deployments:
        return 0
    return app.deployments[DEPLOYMENT].replica_states.get("RUNNING", 0)


def _deploy(spec: ClusterSpec, config: WorkerConfig, say: Say) -> int:
    """Deploy the workers for this cluster's resources without waiting; returns the most that will run."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), resources.get("CPU", 1)
    replicas = spec.replicas or max(gpus, 1)
    if gpus:
        actor = {"num_gpus": 1}
        share = "one GPU each"
    else:
        per = spec.cpus_per_replica or cpus / replicas
        threads = max(1, int(per))
        actor = {"num_cpus": per}
        config = replace(config, threads=threads)
        share = f"{threads} CPU thread{'s' if threads > 1 else ''} each"
    if spec.autoscaling:
        scaling = {"min_replicas": spec.min_replicas, "max_replicas": spec.max_replicas,
                   "initial_replicas": min(max(spec.min_replicas, spec.replicas or 1), spec.max_replicas),
                   "target_ongoing_requests": 1}
        options = {"autoscaling_config": scaling}
        what = f"{spec.min_replicas}–{spec.max_replicas} model workers (autoscaling), {share}"
    else:
        options = {"num_replicas": replicas}
        what = f"{replicas} model worker(s), {share}"
    loads = f", each loading {config.preload}" if config.preload else ""
    say(f"Starting {what}{loads}…")
    worker = ModelWorker.options(ray_actor_options=actor, **options)
    serve.run_many(
        [serve.RunTarget(worker.bind(config), name=APP, route_prefix=None, logging_config={"log_level": "WARNING"})],
        wait_for_applications_running=False,
    )
    return spec.max_replicas if spec.autoscaling else replicas


def _wait_for_workers(wanted: int, say: Say, ready_seconds: float) -> int:
    """Wait until the application runs, saying what it waits for whenever that changes."""
    start, last = time.monotonic(), ""
    while True:
        app = serve.status().applications.get(APP)
        deployment = app.deployments.get(DEPLOYMENT) if app else None
        running = deployment.replica_states.get("RUNNING", 0) if deployment else 0
        if app is not None and app.status == "RUNNING":
            return running
        if app is not None and app.status in ("DEPLOY_FAILED", "UNHEALTHY"):
            detail = (deployment.message if deployment else "") or app.message
            raise ClusterUnavailable(f"The model workers could not start: {detail}")
        waiting = f"Waiting for model workers: {running} of {wanted} ready"
        if deployment is not None and deployment.message:
            waiting += f" ({deployment.message})"
        elapsed = time.monotonic() - start
        if waiting != last:
            say(f"{waiting} [{elapsed:.0f} s]")
            last = waiting
        if elapsed > ready_seconds:
            raise ClusterUnavailable(f"The model workers were not ready after {ready_seconds:.0f} s. {waiting}.")
        time.sleep(0.5)
