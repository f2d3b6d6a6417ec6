"""Morph: exact ends, a monotonic journey, even pacing, and playable animations."""

import av
import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from pipelines import MorphRequest, Progress, Txt2ImgRequest
from pipelines.tasks.morph.render import slerp
from shapeworld.judge import judge
from tests.conftest import TINY, as_array

A, B = "a red circle on a white background", "a blue circle on a white background"


def test_slerp_ends_and_norm():
    import torch

    a, b = torch.randn(1, 77, 8), torch.randn(1, 77, 8)
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    assert abs(mid.norm() - (a.norm() + b.norm()) / 2) < 0.2 * a.norm()


@pytest.mark.parametrize("scheduler,seed_b", [("Euler", -1), ("Euler a", 9)])
def test_first_and_last_frames_equal_text_to_image(tiny_studio, scheduler, seed_b):
    common = dict(model=TINY, steps=4, width=64, height=64, scheduler=scheduler)
    req = MorphRequest(prompt=A, prompt_b=B, num_frames=4, seed=5, seed_b=seed_b, even_pacing=False, **common)
    morph = tiny_studio.morph(req).result()
    first = tiny_studio.txt2img(Txt2ImgRequest(prompt=A, seed=5, **common)).result().images[0]
    last = tiny_studio.txt2img(Txt2ImgRequest(prompt=B, seed=seed_b if seed_b >= 0 else 5, **common)).result().images[0]
    assert (as_array(morph.images[0]) == as_array(first)).all()
    assert (as_array(morph.images[-1]) == as_array(last)).all()
    assert [r.settings["position"] for r in morph.recipes] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert [r.seed for r in morph.recipes] == [5] * 4 and morph.recipes[0].settings["prompt_b"] == B


@pytest.mark.slow
def test_hue_travels_from_red_to_blue_without_going_back(studio):
    req = MorphRequest(model="shapes", prompt=A, prompt_b=B, num_frames=8, seed=3, width=64, height=64, scheduler="Euler", even_pacing=False)
    frames = studio.morph(req).result().images
    hues = [judge(as_array(f)).hue for f in frames]
    hues = [h if h < 300 else h - 360 for h in hues]  # red near 360 reads as just below 0
    assert judge(as_array(frames[0])).colour == "red" and judge(as_array(frames[-1])).colour == "blue"
    assert all(b >= a - 8 for a, b in zip(hues, hues[1:])), hues


@pytest.mark.slow
def test_even_pacing_spreads_the_change(studio):
    common = dict(model="shapes", prompt=A, prompt_b=B, num_frames=8, seed=3, width=64, height=64, scheduler="Euler")
    uniform = studio.morph(MorphRequest(**common, even_pacing=False)).result()
    even = studio.morph(MorphRequest(**common, even_pacing=True)).result()
    assert even.recipes[0].settings["spacing"]["final"] < uniform.recipes[0].settings["spacing"]["final"]
    positions = [r.settings["position"] for r in even.recipes]
    assert len(even.images) == 8 and sorted(positions) == positions


@pytest.mark.parametrize("even_pacing", [False, True])
def test_progress_is_one_count_over_the_whole_morph(tiny_studio, even_pacing):
    """Batches of frames (the ends alone, the middle together, even pacing's second pass) still report
    one rising count whose total is frames × steps, so the page can say "frame k of N"."""
    from ui.tabs.morph import frame_progress

    request = MorphRequest(model=TINY, prompt=A, prompt_b=B, num_frames=7, steps=3, width=64, height=64,
                           seed=1, even_pacing=even_pacing)
    job = tiny_studio.morph(request)
    counts = [(e.step, e.total) for e in job.events() if e.total and not e.message]
    assert job.result().images
    assert {total for _, total in counts} == {7 * 3}
    steps = [step for step, _ in counts]
    assert steps == sorted(steps) and steps[-1] == 7 * 3
    words = [frame_progress({"num_frames": 7})(e) for e in (Progress(1, 21), Progress(10, 21), Progress(21, 21))]
    assert words == ["Frame 1 of 7", "Frame 4 of 7", "Frame 7 of 7"]


def test_gif_and_mp4_have_the_frames(tiny_studio):
    req = MorphRequest(model=TINY, prompt=A, prompt_b=B, num_frames=5, seed=1, steps=2, width=64, height=64, pingpong=True)
    result = tiny_studio.morph(req).result()
    gif = Image.open(result.files["gif"])
    assert gif.n_frames == 5 + 3  # forward, then back without repeating the ends
    frames = list(iio.imiter(result.files["mp4"]))
    assert len(frames) == 8 and frames[0].shape[0] >= 256
    with av.open(result.files["mp4"]) as mp4:  # what every browser plays
        assert (mp4.streams.video[0].codec_context.name, mp4.streams.video[0].codec_context.pix_fmt) == ("h264", "yuv420p")


def test_the_mp4_is_encoded_without_starting_a_process(tmp_path, monkeypatch):
    """A fork of the front (an encoder's process) beside Ray's gRPC threads could break it: none is started."""
    import subprocess

    from pipelines.tasks.morph import write_animations

    def no_process(*args, **kwargs):
        raise AssertionError(f"a process was started: {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    frames = [Image.new("RGB", (64, 64), (40 * i, 90, 200)) for i in range(4)]
    files = write_animations(MorphRequest(model=TINY, prompt=A, prompt_b=B, num_frames=4, fps=8, pingpong=True), frames, tmp_path)
    monkeypatch.undo()
    assert len(list(iio.imiter(files["mp4"]))) == 6  # ping-pong: 4 forward, 2 back


def test_the_animation_and_its_frames_are_saved_with_the_other_results_in_order(tiny_model_dir, tmp_path):
    from pipelines.front.recipe import read_recipe
    from tests.conftest import make_studio, tiny_registry

    studio = make_studio(tiny_registry(tiny_model_dir), outputs=str(tmp_path))
    req = MorphRequest(model=TINY, prompt=A, prompt_b=B, num_frames=12, seed=1, steps=1, width=64, height=64)
    studio.morph(req).result()
    frames = sorted(tmp_path.rglob("*.png"))
    positions = [read_recipe(str(p)).settings["position"] for p in frames]
    assert len(frames) == 12 and positions == sorted(positions)  # by name is the order they play
    (gif,) = tmp_path.rglob("*.gif")
    (mp4,) = tmp_path.rglob("*.mp4")
    assert Image.open(gif).n_frames == 12 and len(list(iio.imiter(mp4))) == 12
    assert gif.parent == frames[0].parent and gif.stem == frames[0].name.rsplit("-", 2)[0]  # one job's files


def test_image_morph_runs_between_two_pictures(studio):
    from shapeworld.world import draw, scene_for

    rng = np.random.default_rng(0)
    a = Image.fromarray(draw(scene_for(rng, "red", "circle", "large", "center", "white")))
    b = Image.fromarray(draw(scene_for(rng, "blue", "square", "large", "center", "white")))
    req = MorphRequest(model="shapes", image_a=a, image_b=b, num_frames=3, seed=1, depth=0.4, width=64, height=64)
    frames = studio.morph(req).result().images
    assert len(frames) == 3
    red = [as_array(f)[..., 0].mean() - as_array(f)[..., 2].mean() for f in frames]
    assert red[0] > red[-1]


def test_image_morph_with_fewer_steps_than_its_depth_needs_still_denoises(tiny_studio):
    a, b = Image.new("RGB", (64, 64), (200, 20, 20)), Image.new("RGB", (64, 64), (20, 20, 200))
    req = MorphRequest(model=TINY, image_a=a, image_b=b, num_frames=3, seed=1, steps=1, depth=0.5, width=64, height=64)
    assert len(tiny_studio.morph(req).result().images) == 3  # int(1 × 0.5) = 0 steps would fail in diffusers


def test_old_animation_folders_are_removed():
    from pipelines.front.outputs import Scratch

    scratch = Scratch(keep=3)
    folders = [scratch.folder() for _ in range(6)]
    assert [f.exists() for f in folders] == [False, False, False, True, True, True]
