"""Text to image through the Studio: determinism, seeds, cancel, outputs on disk."""

import numpy as np
import pytest

from pipelines import Cancelled, Studio, Txt2ImgRequest
from pipelines.front.recipe import read_recipe
from tests.conftest import TINY, as_array

REQ = dict(model=TINY, prompt="a red circle", steps=4, width=64, height=64)


def run(studio, **kw):
    return studio.submit(Txt2ImgRequest(**{**REQ, **kw})).result()


def test_pixels_equal_a_direct_diffusers_call(tiny_studio, tiny_model_dir):
    """The studio adds nothing to the pixels: the same call on the same weights gives the same bytes."""
    import torch
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir, dtype=torch.float32)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    direct = pipe(["a red circle"] * 2, negative_prompt=["blurry"] * 2, width=64, height=48, num_inference_steps=4,
                  guidance_scale=5.0, generator=[torch.Generator("cpu").manual_seed(s) for s in (31, 32)]).images
    studio = run(tiny_studio, seed=31, num_images=2, negative_prompt="blurry", height=48).images
    assert [as_array(a).tobytes() for a in studio] == [as_array(b).tobytes() for b in direct]


def test_same_seed_same_pixels_different_seed_different_pixels(tiny_studio):
    a, b, c = (run(tiny_studio, seed=s).images[0] for s in (11, 11, 12))
    assert (as_array(a) == as_array(b)).all()
    assert (as_array(a) != as_array(c)).any()


def test_batch_image_i_is_seed_plus_i_alone(tiny_studio):
    batch = run(tiny_studio, seed=20, num_images=3)
    assert [r.seed for r in batch.recipes] == [20, 21, 22]
    alone = run(tiny_studio, seed=22).images[0]
    assert np.abs(as_array(batch.images[2]).astype(int) - as_array(alone)).max() <= 1


def test_random_seed_is_drawn_and_reported(tiny_studio):
    result = run(tiny_studio, seed=-1)
    seed = result.recipes[0].seed
    assert 0 <= seed < 2**32
    assert (as_array(run(tiny_studio, seed=seed).images[0]) == as_array(result.images[0])).all()


def test_progress_events_carry_rate_limited_previews(tiny_studio, monkeypatch):
    import pipelines.device.local

    job = tiny_studio.txt2img(Txt2ImgRequest(**REQ, seed=1))
    events = list(job.events())
    assert [e.step for e in events if e.total and e.step] == [1, 2, 3, 4]
    assert all(e.preview is None for e in events)  # a short run ends before the first preview is due
    monkeypatch.setattr(pipelines.device.local, "PREVIEW_SECONDS", 0.0)
    job = tiny_studio.txt2img(Txt2ImgRequest(**REQ, seed=1))
    previews = [e.preview for e in job.events() if e.total]
    assert all(p is not None and p.size == (64, 64) for p in previews[:-1])
    assert job.result().images


def test_cancel_stops_within_two_steps(tiny_studio):
    job = tiny_studio.txt2img(Txt2ImgRequest(**{**REQ, "steps": 150}, seed=1))
    seen = 0
    for event in job.events():
        if event.total:
            seen = event.step
            if seen == 3:
                job.cancel()
    with pytest.raises(Cancelled):
        job.result()
    assert seen <= 3 + 2


def test_cancelling_one_job_never_touches_another(tiny_studio):
    a = tiny_studio.txt2img(Txt2ImgRequest(**{**REQ, "steps": 30}, seed=1))
    b = tiny_studio.txt2img(Txt2ImgRequest(**{**REQ, "steps": 6}, seed=2))
    a.cancel()
    with pytest.raises(Cancelled):
        a.result()
    assert len(b.result().images) == 1


def test_recipe_describes_the_image(tiny_studio):
    result = run(tiny_studio, seed=5, negative_prompt="blurry", guidance_scale=4.5)
    r = result.recipes[0]
    assert (r.task, r.model, r.prompt, r.negative_prompt, r.seed, r.steps) == ("txt2img", TINY, "a red circle", "blurry", 5, 4)
    assert (r.width, r.height, r.guidance_scale, r.scheduler) == (64, 64, 4.5, "Euler a")
    assert r.settings == {"guidance_rescale": 0.0}
    assert r.versions["diffusers"] and r.image_id


def test_results_are_saved_whole_with_their_recipe(tiny_studio, tmp_path):
    studio = Studio(tiny_studio.runner, tiny_studio.registry, outputs=str(tmp_path))
    result = run(studio, seed=9)
    files = list(tmp_path.rglob("*.png"))
    assert len(files) == 1 and not list(tmp_path.rglob(".partial-*"))
    assert read_recipe(str(files[0])) == result.recipes[0]


def test_a_failed_run_releases_everything_and_the_next_works(tiny_studio, monkeypatch):
    import torch

    manager = tiny_studio.runner.manager
    pipe = manager.pipeline(TINY, "txt2img")
    before = as_array(run(tiny_studio, seed=4).images[0])
    original = type(pipe.unet).forward

    def out_of_memory(self, *a, **kw):
        raise torch.OutOfMemoryError("CUDA out of memory (injected)")

    monkeypatch.setattr(type(pipe.unet), "forward", out_of_memory)
    with pytest.raises(Exception, match="memory"):
        run(tiny_studio, seed=4)
    monkeypatch.setattr(type(pipe.unet), "forward", original)
    assert (as_array(run(tiny_studio, seed=4).images[0]) == before).all()
    assert manager.lock.acquire(timeout=1)
    manager.lock.release()


def test_images_above_the_tiling_threshold_decode_in_tiles(tiny_model_dir, monkeypatch):
    from tests.conftest import make_studio, tiny_registry

    studio = make_studio(tiny_registry(tiny_model_dir), vae_tiling_pixels=48 * 48)
    vae = studio.runner.manager.pipeline(TINY, "txt2img").vae
    tiled = []
    original = type(vae).tiled_decode
    monkeypatch.setattr(type(vae), "tiled_decode", lambda self, *a, **kw: tiled.append(1) or original(self, *a, **kw))

    large = run(studio, width=64, height=64).images[0]
    assert tiled and large.size == (64, 64)
    assert not vae.use_tiling  # a per-run change: undone after the run, for every view sharing the autoencoder
    tiled.clear()
    small = run(studio, width=32, height=32).images[0]
    assert not tiled and small.size == (32, 32)
