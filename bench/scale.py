"""The studio on a Ray Serve cluster against the studio in this process, on this machine's CPU.

    python bench/scale.py                      # the embedded model; about 3 minutes on 2 cores
    python bench/scale.py --out bench/results/scale.json

throughput: images per second with 4 clients at once (each waits for its image, then asks again), on
    one model worker with one thread, then on two workers with one thread each (the limit is 2×).
one_image: seconds for one image through the cluster (one worker, one thread) against the same request
    in this process (one thread): what the hop to a worker, the streamed progress and the pickled
    images cost.
model_switch: requests alternating between two models. In this process every request loads the model
    it asks for (one model in memory); on two workers each keeps its own and Serve routes every request
    to the worker holding its model. Also the first request of a model no worker holds yet (a load).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pipelines import Registry, Studio, Txt2ImgRequest  # noqa: E402
from pipelines.device.cluster import ClusterSpec, start_cluster  # noqa: E402
from pipelines.device.local import local_studio  # noqa: E402
from pipelines.device.manager import PipelineManager  # noqa: E402
from pipelines.device.worker import WorkerConfig  # noqa: E402
from pipelines.front.registry import EMBEDDED_MODEL  # noqa: E402

CLIENTS = 4
# A second name for the embedded weights: a model of its own to the manager and to Serve's routing.
SECOND = "shapes-b"
FOLDERS = {SECOND: str(EMBEDDED_MODEL)}


def request(seed: int, model: str = "shapes", steps: int = 20) -> Txt2ImgRequest:
    # A folder model's smallest size is 256²; the embedded preset makes 64².
    size = 64 if model == "shapes" else 256
    return Txt2ImgRequest(model=model, prompt="a large blue triangle on a white background", seed=seed,
                          steps=steps, width=size, height=size, guidance_scale=5.0, scheduler="Euler a")


def timed(studio: Studio, req: Txt2ImgRequest) -> float:
    start = time.perf_counter()
    studio.submit(req).result(timeout=600)
    return time.perf_counter() - start


def throughput(studio: Studio, per_client: int) -> float:
    """Images per second with CLIENTS clients asking at once."""
    def client(index: int) -> None:
        for n in range(per_client):
            studio.submit(request(seed=100 * index + n)).result(timeout=600)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return CLIENTS * per_client / (time.perf_counter() - start)


def alternating(studio: Studio, rounds: int, steps: int) -> list[float]:
    """Seconds of each request for the second model, in rounds of (embedded, second)."""
    times = []
    for n in range(rounds):
        studio.submit(request(seed=n)).result(timeout=600)
        times.append(timed(studio, request(seed=n, model=SECOND, steps=steps)))
    return times


def cluster(replicas: int) -> Studio:
    config = WorkerConfig(model_folders=FOLDERS, device="cpu", dtype="float32", offline=True, preload="shapes")
    spec = ClusterSpec("local", replicas=replicas, cpus_per_replica=1)  # one thread per worker
    runner = start_cluster(spec, config, say=lambda line: print(f"  {line}", file=sys.stderr))
    return Studio(runner, Registry.with_folders(FOLDERS))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=8, help="single-image runs of each side (medians)")
    p.add_argument("--per-client", type=int, default=4, help="images each of the 4 clients asks for")
    p.add_argument("--switch-steps", type=int, default=1, help="steps of the second model's 256² image")
    p.add_argument("--rounds", type=int, default=4, help="model-switch rounds")
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    torch.set_num_threads(1)  # in this process: one thread, as each worker has
    manager = PipelineManager(Registry.with_folders(FOLDERS), device="cpu", dtype="float32", offline=True)
    here = local_studio(manager)
    timed(here, request(0))  # warm-up: loads the model

    one = cluster(replicas=1)
    timed(one, request(0))
    here_t, there_t = [], []
    for n in range(args.runs):  # interleaved, so drift in the machine's load hits both alike
        here_t.append(timed(here, request(n)))
        there_t.append(timed(one, request(n)))
    one_worker = throughput(one, args.per_client)
    one.close()

    two = cluster(replicas=2)
    throughput(two, per_client=1)  # warm-up: both workers take a request of the embedded model
    two_workers = throughput(two, args.per_client)
    first_load = timed(two, request(0, model=SECOND, steps=args.switch_steps))
    routed = alternating(two, args.rounds, args.switch_steps)
    two.close()
    loading = alternating(here, args.rounds, args.switch_steps)
    here.close()

    result = {
        "cpu_threads_per_side": 1,
        "one_image_in_process_s": round(statistics.median(here_t), 3),
        "one_image_cluster_s": round(statistics.median(there_t), 3),
        "cluster_over_in_process": round(statistics.median(there_t) / statistics.median(here_t), 3),
        "images_per_s_1_worker": round(one_worker, 3),
        "images_per_s_2_workers": round(two_workers, 3),
        "2_workers_over_1": round(two_workers / one_worker, 3),
        "switch_in_process_loading_s": round(statistics.median(loading), 3),
        "switch_cluster_routed_to_holder_s": round(statistics.median(routed), 3),
        "loading_over_routed": round(statistics.median(loading) / statistics.median(routed), 2),
        "first_request_of_a_model_no_worker_holds_s": round(first_load, 3),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
