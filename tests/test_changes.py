"""Per-run pipeline changes: applied in order before a run, undone in reverse after it, failed or not."""

import pytest

import pipelines.changes as changes
from pipelines import Txt2ImgRequest
from tests.conftest import TINY, make_studio, tiny_registry


def test_changes_are_entered_in_order_and_left_in_reverse_also_on_failure(monkeypatch):
    from contextlib import contextmanager

    log = []

    def change(name):
        @contextmanager
        def apply(run):
            log.append(f"+{name}")
            try:
                yield
            finally:
                log.append(f"-{name}")

        return apply

    monkeypatch.setattr(changes, "CHANGES", (change("a"), change("b"), change("c")))
    with pytest.raises(RuntimeError):
        with changes.applied(run=None):
            log.append("run")
            raise RuntimeError("the run failed")
    assert log == ["+a", "+b", "+c", "run", "-c", "-b", "-a"]


def test_a_failed_run_leaves_the_shared_pipeline_as_it_found_it(tiny_model_dir, monkeypatch):
    studio = make_studio(tiny_registry(tiny_model_dir), vae_tiling_pixels=32 * 32)
    pipe = studio.runner.manager.pipeline(TINY, "txt2img")
    own = pipe.scheduler
    seen = {}

    def broken(*args, **kwargs):
        seen.update(scheduler=type(pipe.scheduler).__name__, tiled=pipe.vae.use_tiling)
        raise RuntimeError("injected failure")

    monkeypatch.setattr(pipe.unet, "forward", broken)
    request = Txt2ImgRequest(model=TINY, prompt="x", scheduler="DPM++ 2M Karras", steps=2, width=64, height=64)
    with pytest.raises(RuntimeError, match="injected failure"):
        studio.submit(request).result()
    assert seen == {"scheduler": "DPMSolverMultistepScheduler", "tiled": True}  # both were on during the run
    assert pipe.scheduler is own and not pipe.vae.use_tiling  # and both are undone after it
