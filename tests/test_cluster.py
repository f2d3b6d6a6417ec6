"""The studio on a Ray Serve cluster: real Ray on this machine's CPU, two model workers, started once for
the module (about 15 s) through the app's own settings, and shut down after.

Same seed, same pixels as in-process; concurrent jobs spread over both workers; requests go to the worker
that holds their model; Stop reaches the worker within a step; a worker killed mid-job is replaced and
the job retried (or refused clearly); an unreachable cluster is refused at start with what to do.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import AtelierError, Cancelled, ModelState, Txt2ImgRequest
from settings import load_settings
from tests.conftest import TINY, as_array, make_studio, tiny_registry

ROOT = Path(__file__).resolve().parent.parent
STEP_SECONDS = 0.05  # one denoising step of the embedded model on one thread: about 0.03–0.06 s


def shapes(seed: int = 1, steps: int = 20, **fields) -> Txt2ImgRequest:
    return Txt2ImgRequest(model="shapes", prompt="a small red circle on a white background", seed=seed,
                          steps=steps, width=64, height=64, **fields)


def tiny(seed: int = 1) -> Txt2ImgRequest:
    # A folder model's smallest size; one step, as a step of the tiny model at 256² takes ~0.9 s on one thread.
    return Txt2ImgRequest(model=TINY, prompt="a blue square", seed=seed, steps=1, width=256, height=256)


def messages(job) -> list[str]:
    """Every progress message of a job, to its end."""
    return [event.message for event in job.events() if event.message]


def worker_of(job) -> str:
    from pipelines.device.cluster import ON_WORKER

    prefix = ON_WORKER.format("")
    return next(m.removeprefix(prefix) for m in messages(job) if m.startswith(prefix))


def wait_for(job, done: int):
    """Wait until the job has done `done` denoising steps; the worker it runs on."""
    from pipelines.device.cluster import ON_WORKER

    prefix, worker = ON_WORKER.format(""), ""
    for event in job.events():
        worker = event.message.removeprefix(prefix) if event.message.startswith(prefix) else worker
        if event.total and event.step >= done:
            return worker
    raise AssertionError("the job ended before it got that far")


def kill(worker: str) -> None:
    """End a model worker's process at once, as a crash would (Serve starts a replacement)."""
    import ray

    from pipelines.device.worker import APP, DEPLOYMENT

    ray.kill(ray.get_actor(f"SERVE_REPLICA::{APP}#{DEPLOYMENT}#{worker}", namespace="serve"), no_restart=True)


# -- without Ray: settings, merging, the Stop, the deploy files -----------------------------------------


@pytest.mark.parametrize(
    "flags,says",
    [
        (["--replicas", "-1"], "--replicas"),
        (["--models-per-replica", "0"], "--models-per-replica"),
        (["--models-per-replica", "2"], "--memory-budget-gb"),
        (["--min-replicas", "3", "--max-replicas", "2"], "--max-replicas"),
        (["--min-replicas", "1"], "--max-replicas"),
    ],
)
def test_cluster_settings_that_cannot_work_are_refused_by_name(flags, says):
    with pytest.raises(SystemExit, match=says):
        load_settings(["--cluster", "local", *flags], environ={})


def test_cluster_settings_come_from_flags_and_variables():
    env = {"ATELIER_CLUSTER": "ray://head:10001", "ATELIER_MAX_REPLICAS": "4"}
    settings, _ = load_settings(["--replicas", "2"], environ=env)
    assert (settings.cluster, settings.replicas, settings.max_replicas) == ("ray://head:10001", 2, 4)


def test_importing_the_app_or_the_back_end_loads_no_ray():
    code = "import sys, app, pipelines, pipelines.front.studio, pipelines.device.local; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_the_residency_panel_shows_each_model_once_with_the_workers_holding_it():
    from pipelines.device.cluster import merge_models

    a = [ModelState("shapes", "resident", "cpu", "float32", 31.0), ModelState("tiny", "load from disk")]
    b = [ModelState("shapes", "resident", "cpu", "float32", 31.0, pinned=True), ModelState("tiny", "load from disk")]
    c = [ModelState("shapes", "load from disk"), ModelState("tiny", "resident", "cpu", "float32", 0.5)]
    merged = merge_models([a, b, c])
    assert merged[0] == ModelState("shapes", "resident", "cpu × 2 of 3 workers", "float32", 31.0, pinned=True)
    assert merged[1] == ModelState("tiny", "resident", "cpu × 1 of 3 workers", "float32", 0.5)
    assert merge_models([]) == []


def test_stop_cancels_the_remote_call_whenever_it_is_pressed():
    from pipelines.device.cluster import RemoteStop

    class Call:
        cancelled = 0

        def cancel(self):
            self.cancelled += 1

    stop, first, second = RemoteStop(), Call(), Call()
    stop.follow(first)
    stop.set()  # pressed while the call runs
    stop.follow(None)
    stop.follow(second)  # a retry started after Stop was pressed is cancelled at once
    assert (first.cancelled, second.cancelled, stop.is_set()) == (1, 1, True)


def test_an_unreachable_cluster_is_refused_at_start_with_what_to_do():
    out = subprocess.run(
        [sys.executable, "app.py", "--cluster", "127.0.0.1:9", "--no-open-browser"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert out.returncode != 0
    assert "Nothing answers at 127.0.0.1:9" in out.stderr
    assert "ray start --head" in out.stderr and "--cluster local" in out.stderr
    assert "Connecting to the Ray cluster at 127.0.0.1:9" in out.stdout  # said what it was waiting for


def test_an_address_that_is_not_one_is_refused():
    from pipelines.device.cluster import ClusterSpec, ClusterUnavailable, start_cluster
    from pipelines.device.worker import WorkerConfig

    with pytest.raises(ClusterUnavailable, match="'lcoal' is not a Ray address"):
        start_cluster(ClusterSpec("lcoal"), WorkerConfig(), say=lambda line: None)


def test_the_serve_config_and_the_rayservice_deploy_the_same_workers():
    import yaml
    from ray.serve.schema import ServeDeploySchema

    from pipelines.device.worker import WorkerConfig, app_builder

    config = yaml.safe_load((ROOT / "deploy" / "atelier.yaml").read_text())
    service = yaml.safe_load((ROOT / "deploy" / "rayservice.yaml").read_text())
    embedded = yaml.safe_load(service["spec"]["serveConfigV2"])
    for serve_config in (config, embedded):
        ServeDeploySchema.model_validate(serve_config)  # what `serve deploy` and KubeRay check first
        (application,) = serve_config["applications"]
        assert application["import_path"] == "pipelines.device.worker:app_builder"
        assert application["name"] == "atelier" and application["route_prefix"] is None
        WorkerConfig.from_args(application["args"])  # every key is a worker setting
        assert application["deployments"][0]["name"] == "ModelWorker"
    assert config["applications"][0]["args"] == embedded["applications"][0]["args"]
    assert callable(app_builder)
    with pytest.raises(ValueError, match="unknown worker setting"):
        WorkerConfig.from_args({"model_dir": "/x"})


# -- on a real Ray instance, two workers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tiny_model_dir, tmp_path_factory):
    """The app's own wiring for `--cluster local --replicas 2`: its studio, what it printed while it
    started, and its page served on a free port."""
    import app

    settings, _ = load_settings(
        ["--cluster", "local", "--replicas", "2", "--model-dirs", f"{TINY}={tiny_model_dir}", "--device", "cpu",
         "--dtype", "float32", "--offline", "--outputs", str(tmp_path_factory.mktemp("outputs")),
         "--styles-file", str(tmp_path_factory.mktemp("styles") / "styles.json")],
        environ={},
    )
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        studio = app.build_studio(settings)
    demo = app.build_app(settings, studio)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield studio, printed.getvalue().splitlines(), demo.local_url
    demo.close()
    studio.close()


def test_starting_says_what_it_waits_for(cluster):
    _, printed, _ = cluster
    assert printed[0].startswith("Cluster: Starting a local Ray instance")
    assert "Cluster: Starting 2 model worker(s), 1 CPU thread each, each loading shapes…" in printed
    assert any(line.startswith("Cluster: Waiting for model workers: 0 of 2 ready") for line in printed)
    assert printed[-1].startswith("Cluster: 2 model worker(s) ready after")


def test_the_cluster_studio_keeps_the_persons_styles(cluster):
    """--styles-file holds in cluster mode too: "Save style" keeps the style, and it is offered."""
    from pipelines import Style

    studio, _, _ = cluster
    studio.styles.save(Style.from_dict({"name": "dusk", "prompt": "{prompt} at dusk"}))
    assert "dusk" in studio.styles_for(TINY)
    assert studio.runner.capacity == 2  # the page lets as many jobs through as there are workers


def test_the_same_seed_gives_the_same_pixels_as_in_process(cluster, tiny_model_dir):
    import torch

    studio, _, _ = cluster
    there = studio.submit(shapes(seed=11, num_images=2)).result(timeout=120)
    # The workers run one CPU thread each; float sums depend on how the work is split across threads.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = make_studio(tiny_registry(tiny_model_dir)).submit(shapes(seed=11, num_images=2)).result()
    finally:
        torch.set_num_threads(threads)
    assert [as_array(a).tobytes() for a in here.images] == [as_array(b).tobytes() for b in there.images]
    assert [{**r.to_dict(), "versions": None} for r in here.recipes] == [
        {**r.to_dict(), "versions": None} for r in there.recipes
    ]


def test_progress_and_live_previews_stream_back_from_the_worker(cluster):
    studio, _, _ = cluster
    job = studio.submit(shapes(seed=12, steps=40))  # about 2 s: previews come at most every 0.5 s
    events = list(job.events())
    steps = [event.step for event in events if event.total == 40 and event.step]  # (0, 40): a load
    assert steps == list(range(1, 41))  # every step, in order
    previews = [event.preview for event in events if event.preview is not None]
    assert previews and all(preview.size == (64, 64) for preview in previews)
    assert len(job.result(timeout=5).images) == 1


def test_four_clients_at_once_are_served_by_both_workers(cluster):
    studio, _, _ = cluster
    jobs = [studio.submit(shapes(seed=20 + i, steps=30)) for i in range(4)]
    workers = [worker_of(job) for job in jobs]
    assert all(len(job.result(timeout=120).images) == 1 for job in jobs)
    assert len(set(workers)) == 2, workers


def test_requests_go_to_the_worker_that_holds_their_model(cluster):
    studio, _, _ = cluster
    first = studio.submit(tiny(seed=1))
    holder = worker_of(first)
    first.result(timeout=120)
    # One model per worker: the other worker still holds the embedded model, this one now the tiny one.
    assert [worker_of(studio.submit(tiny(seed=s))) for s in (2, 3, 4)] == [holder] * 3
    assert worker_of(studio.submit(shapes(seed=5))) != holder
    rows = {row.model: row for row in studio.residency()}
    assert rows[TINY].state == "resident" and rows[TINY].device.endswith("1 of 2 workers")


def test_an_error_on_a_worker_reaches_the_person_as_its_own_message(cluster):
    studio, _, _ = cluster
    # The workers are offline and SD 1.5 is not on this machine: the worker says how to fetch it.
    job = studio.submit(Txt2ImgRequest(model="sd15", prompt="x", steps=1, width=512, height=512))
    with pytest.raises(AtelierError, match="hf download"):
        job.result(timeout=120)
    assert len(studio.submit(shapes(seed=6)).result(timeout=120).images) == 1  # and it keeps serving


def test_stop_reaches_the_worker_within_a_denoising_step_and_withdraws_a_waiting_job(cluster):
    studio, _, _ = cluster
    long_jobs = [studio.submit(shapes(seed=30 + i, steps=150)) for i in range(2)]
    for job in long_jobs:
        wait_for(job, 2)
    waiting = studio.submit(shapes(seed=40))
    time.sleep(0.3)
    assert waiting.latest(0.1)[0].message.startswith("Waiting for a free worker")  # both workers are busy
    waiting.cancel()
    with pytest.raises(Cancelled):
        waiting.result(timeout=5)
    stopped_at = time.monotonic()
    for job in long_jobs:
        job.cancel()
        with pytest.raises(Cancelled):
            job.result(timeout=5)
    # Each worker answers only once its accelerator thread has left the job: well before 150 steps.
    studio.residency()
    assert time.monotonic() - stopped_at < 40 * STEP_SECONDS


def test_two_browsers_generating_at_once_are_served_in_parallel(cluster):
    from gradio_client import Client

    _, _, url = cluster
    jobs = [
        Client(url, verbose=False).submit(
            prompt=f"a large blue square on a white background {i}", steps=60, width=64, height=64,
            model="shapes", api_name="/txt2img",
        )
        for i in range(2)
    ]
    deadline = time.monotonic() + 60
    while not all(job.status().code.name in ("PROCESSING", "PROGRESS", "ITERATING") for job in jobs):
        assert not any(job.done() for job in jobs), "one request waited for the other"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert all(len(job.result(timeout=120)[0]) == 1 for job in jobs)


def test_a_worker_killed_mid_job_is_replaced_and_work_goes_on(cluster):
    from pipelines.device.cluster import RETRYING

    studio, _, _ = cluster
    job = studio.submit(shapes(seed=50, steps=80))
    worker = wait_for(job, 3)
    kill(worker)
    after_the_kill = messages(job)  # the job must end: here it starts again on the worker still alive
    assert len(job.result(timeout=5).images) == 1
    assert RETRYING in after_the_kill
    assert worker not in [m for m in after_the_kill if m.startswith("Running on worker")][-1]
    assert len(studio.submit(shapes(seed=51)).result(timeout=120).images) == 1


def test_a_job_whose_workers_are_all_lost_is_answered_clearly(cluster):
    """Both attempts lose their worker: the person is told to try again; nothing hangs."""
    from pipelines.device.cluster import LOST

    studio, _, _ = cluster
    job = studio.submit(shapes(seed=52, steps=150))
    for _ in range(2):
        worker = wait_for(job, 2)
        kill(worker)
    with pytest.raises(AtelierError, match=LOST):
        job.result(timeout=30)
    assert len(studio.submit(shapes(seed=53)).result(timeout=120).images) == 1
