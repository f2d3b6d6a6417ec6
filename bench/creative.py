"""What LoRAs and weighted prompts cost: a run with a LoRA against the same run without, and the weighted
encoding of a prompt against the pipeline's own.

    python bench/creative.py                 # embedded model, CPU, 20 steps, 64×64
    python bench/creative.py --repeats 10

The LoRA is the shipped `outline` where it is on disk, else one of the same shape (rank 8 on the U-Net's
attention, projections and feed-forward, as `python -m shapeworld.train lora` makes) with random
matrices: what it costs does not depend on what it learned. Runs alternate, the median is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODEL = Path(__file__).resolve().parent.parent / "assets" / "shapes-model"


def lora_file(folder: Path) -> tuple[str, Path]:
    shipped = MODEL / "loras" / "outline.safetensors"
    if shipped.is_file():
        return "outline", MODEL / "loras"
    from shapeworld.train import LORA_TARGETS
    from tests.conftest import build_lora

    build_lora(MODEL, folder, "same-shape", seed=0, targets=LORA_TARGETS)
    return "same-shape", folder


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()

    from pipelines import Registry, Txt2ImgRequest
    from pipelines.device.weighting import WeightedEncoder
    from tests.conftest import make_studio

    with tempfile.TemporaryDirectory() as scratch:
        name, folder = lora_file(Path(scratch))
        studio = make_studio(Registry(Registry().presets, (("bench", str(folder)),)))
        request = dict(model="shapes", prompt="a large blue square on a white background", seed=1, steps=args.steps,
                       width=64, height=64)

        def run(**kw):
            studio.submit(Txt2ImgRequest(**{**request, **kw})).result()

        run()  # load the model once
        plain, lora, weighted = [], [], []
        for _ in range(args.repeats):  # alternating, so drift on a shared machine hits all alike
            plain += timed(run, 1)
            lora += timed(lambda: run(loras=[[name, 1.0]]), 1)
            weighted += timed(lambda: run(prompt="a large (blue:1.4) square on a [white] background"), 1)

        pipe = studio.runner.manager.pipeline("shapes", "txt2img")
        text = "a large (blue:1.4) square on a [white] background"
        own = timed(lambda: pipe.encode_prompt("a large blue square on a white background", pipe.device, 1, True, ""), 50)
        mine = timed(lambda: WeightedEncoder(pipe, (text, "")).encode_prompt(text, pipe.device, 1, True, ""), 50)

    med = statistics.median
    print(f"LoRA '{name}' at weight 1, {args.steps} steps, 64×64, CPU (median of {args.repeats}):")
    print(f"  txt2img without: {med(plain):.3f} s   with: {med(lora):.3f} s   ratio {med(lora) / med(plain):.2f}×")
    print(f"  txt2img with a weighted prompt: {med(weighted):.3f} s   ratio {med(weighted) / med(plain):.2f}×")
    print("Encoding the prompt and the empty negative (median of 50):")
    print(f"  pipeline's own: {med(own) * 1000:.1f} ms   weighted (2 weights): {med(mine) * 1000:.1f} ms   "
          f"ratio {med(mine) / med(own):.2f}×")


if __name__ == "__main__":
    main()
