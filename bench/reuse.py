"""Fast draft (feature reuse, DeepCache) on the embedded model: what each interval saves and what it costs
the picture, in one run.

    python bench/reuse.py --out bench/results                 # 96 captions, 48 scenes, intervals 1…5
    python bench/reuse.py --captions 8 --scenes 4 --runs 1    # a quick look

Quality: the judge's per-attribute accuracy on one-figure captions and its share of two-figure scenes
drawn right, at the model's defaults (20 steps, 64²), batched 32 a call, the same seeds at every interval.
Speed: one image through the Studio (what a person waits for), intervals interleaved, median of --runs,
as a ratio to the exact picture's time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import Registry, Txt2ImgRequest  # noqa: E402
from pipelines.device.acceleration import feature_reuse  # noqa: E402
from pipelines.device.local import local_studio  # noqa: E402
from pipelines.device.manager import PipelineManager  # noqa: E402
from shapeworld.evaluate import evaluation_cases, pipeline_generator, scene_cases, score, score_scenes  # noqa: E402

MODEL = "shapes"


def quality(manager: PipelineManager, interval: int, captions: int, scenes: int) -> dict:
    pipe = manager.pipeline(MODEL, "txt2img")
    preset = manager.registry.get(MODEL)
    plain = pipeline_generator(pipe, preset.steps, preset.guidance)

    def generate(texts, seeds):
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)  # fresh: it carries state
        with feature_reuse(pipe, interval):
            return plain(texts, seeds)

    single = score(generate, evaluation_cases(captions), [0])
    return dict(single=single, single_mean=sum(single.values()) / len(single),
                two_figures=score_scenes(generate, scene_cases(scenes), [0]))


def speed(studio, intervals: list[int], runs: int) -> dict[int, float]:
    preset = studio.preset(MODEL)
    requests = {i: Txt2ImgRequest(model=MODEL, prompt="a red circle and a blue square on a white background", width=64,
                                  height=64, steps=preset.steps, guidance_scale=preset.guidance, scheduler=preset.scheduler,
                                  seed=1, feature_reuse=i) for i in intervals}
    times = {i: [] for i in intervals}
    for request in requests.values():
        studio.submit(request).result()  # warm
    for _ in range(runs):
        for i, request in requests.items():
            start = time.perf_counter()
            studio.submit(request).result()
            times[i].append(time.perf_counter() - start)
    return {i: statistics.median(t) for i, t in times.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intervals", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--captions", type=int, default=96)
    parser.add_argument("--scenes", type=int, default=48)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    manager = PipelineManager(Registry(), device="cpu", dtype="float32")
    seconds = speed(local_studio(manager), args.intervals, args.runs)
    rows = []
    for interval in args.intervals:
        row = dict(interval=interval, image_s=seconds[interval], speedup=seconds[args.intervals[0]] / seconds[interval],
                   **quality(manager, interval, args.captions, args.scenes))
        rows.append(row)
        print(f"every {interval} steps: {row['image_s']:.3f} s/image ({row['speedup']:.2f}×)  judge: one figure "
              f"{row['single_mean']:.3f} ({', '.join(f'{k} {v:.2f}' for k, v in row['single'].items())}), "
              f"two figures {row['two_figures']:.3f}", flush=True)
    report = dict(date=str(date.today()), device="cpu", captions=args.captions, scenes=args.scenes, runs=args.runs,
                  rows=rows)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"reuse-{report['date']}.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
