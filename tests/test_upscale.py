"""The Upscale task and Text to image's hires cascade on the embedded model: its own ×4 stage, offline."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

from bench.upscale import in_between
from pipelines import (
    Cancelled,
    InpaintRequest,
    MorphRequest,
    SketchRequest,
    Txt2ImgRequest,
    UpscaleRequest,
    ValidationError,
    VariationsRequest,
    read_recipe,
)
from pipelines.device.upscaling import ramp, starts
from pipelines.tasks.cascade import back_scale
from pipelines.tasks.masks import feather, mask_array
from shapeworld.judge import read_scene
from shapeworld.world import draw, sample_scene, scene_text
from ui.tabs.upscale import described_by

MODEL = "shapes"


def readings(image: np.ndarray) -> tuple:
    """What the judge says of a picture: the background and each figure's colour, shape and place."""
    scene = read_scene(image)
    return scene.background, sorted((f.colour, f.shape, f.position) for f in scene.figures)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


@pytest.fixture(scope="module")
def made(studio):
    """A text-to-image result to upscale (its recipe is the parent's)."""
    return studio.submit(Txt2ImgRequest(model=MODEL, prompt="a large red circle on a white background", seed=3,
                                        width=64, height=64, steps=12)).result()


def test_x4_and_x2_of_a_result_are_recorded_with_their_parent(studio, made):
    parent = made.recipes[0].image_id
    four = studio.submit(UpscaleRequest(model=MODEL, image=made.images[0], prompt=made.recipes[0].prompt,
                                        parent=parent, seed=1)).result()
    assert four.images[0].size == (256, 256)
    recipe = four.recipes[0]
    assert (recipe.task, recipe.parent, recipe.settings["scale"]) == ("upscale", parent, 4)
    assert recipe.settings["new_detail"] == pytest.approx(studio.preset(MODEL).upscale_detail)
    assert read_recipe(four.pngs[0]).task == "upscale"  # the PNG carries it too
    # ×2 is the ×4 stage's result scaled down: its colours and layout are the ×4's.
    two = studio.submit(UpscaleRequest(model=MODEL, image=made.images[0], scale=2, seed=1)).result()
    assert two.images[0].size == (128, 128)
    halved = np.asarray(four.images[0].resize((128, 128), Image.Resampling.LANCZOS), float)
    assert np.abs(np.asarray(two.images[0], float) - halved).mean() < 12


def test_the_stage_draws_the_same_scene_as_the_truth(studio):
    """The scene drawn at 64² and upscaled reads, to the judge, as the same scene drawn at 256², and is
    close to it (bench/upscale.py has the figures against bicubic)."""
    rng = np.random.default_rng(11)
    for _ in range(2):
        scene = sample_scene(rng)
        small, truth = draw(scene), draw(scene, size=256)
        caption = scene_text([f"a {f.colour} {f.shape}" for f in scene.figures], scene.background)
        out = np.asarray(studio.submit(UpscaleRequest(model=MODEL, image=Image.fromarray(small), prompt=caption,
                                                      seed=0)).result().images[0])
        assert readings(out) == readings(truth)
        assert psnr(out, truth) > 26
        # Its edges decided, not blended: far fewer in-between pixels than bicubic leaves (0.30× over 256
        # held-out scenes in bench/upscale.py; one scene varies from 0.3× to 0.46×).
        bicubic = np.asarray(Image.fromarray(small).resize((256, 256), Image.Resampling.BICUBIC))
        assert in_between(out, scene) < 0.6 * in_between(bicubic, scene)


def test_every_offered_scheduler_runs_the_stage_at_many_steps(studio):
    """The tab offers the model's samplers for the stage: each one runs it to the end and gives the picture
    (Karras sigmas on the stage's cosine schedule once ran one step past it at 8 steps; Euler a at 3 steps
    gave NaN, a black square, by float32 rounding in diffusers)."""
    small = Image.fromarray(draw(sample_scene(np.random.default_rng(5)), size=16))  # a 64² result: cheap
    bicubic = np.asarray(small.resize((64, 64), Image.Resampling.BICUBIC))
    for scheduler in studio.preset(MODEL).schedulers:
        for steps in (1, 2, 3, 4, 8):
            out = studio.submit(UpscaleRequest(model=MODEL, image=small, steps=steps, scheduler=scheduler,
                                               seed=0)).result().images[0]
            assert out.size == (64, 64), (scheduler, steps)
            assert psnr(np.asarray(out), bicubic) > 18, (scheduler, steps)


def test_a_picture_larger_than_a_tile_is_done_in_tiles_to_the_exact_size(studio):
    picture = Image.fromarray(draw(sample_scene(np.random.default_rng(2)))).resize((150, 100), Image.Resampling.LANCZOS)
    out = studio.submit(UpscaleRequest(model=MODEL, image=picture, scale=2, steps=2, seed=4)).result()
    assert out.images[0].size == (300, 200)
    # The tiles' weights sum to one wherever two overlap, and the last tile ends flush with the picture.
    assert starts(150, 128, 16) == [0, 22] and starts(100, 128, 16) == [0]
    rise = ramp(128, 16, first=False)
    assert np.allclose(rise[:16] + rise[:16][::-1], 1.0) and rise[16:].min() == 1.0


@pytest.mark.parametrize(("change", "field"), [
    (dict(scale=3), "scale"),
    (dict(loras=(("outline", 1.0),)), "loras"),
    (dict(image=Image.new("RGB", (1100, 64))), "image"),  # ×4 would be 4400 pixels wide
    (dict(image=None), "image"),
    (dict(new_detail=1.5), "new_detail"),
])
def test_bad_requests_are_refused_by_name(studio, made, change, field):
    with pytest.raises(ValidationError) as refusal:
        studio.submit(UpscaleRequest(**{"model": MODEL, "image": made.images[0], **change}))
    assert refusal.value.field == field


def test_a_stopped_upscale_ends_cancelled_and_the_next_runs(studio, made):
    job = studio.submit(UpscaleRequest(model=MODEL, image=made.images[0], steps=50, seed=2))
    job.cancel()
    with pytest.raises(Cancelled):
        job.result()


def progress_and_result(job, phases: list | None = None):
    """(every (step, total) the job reported while it ran, its result); each one's phase into `phases`."""
    seen = []
    while True:
        event, ended = job.latest(0.05)
        if event is not None and event.step:
            seen.append((event.step, event.total))
            if phases is not None:
                phases.append(event.phase)
        if ended:
            return seen, job.result()


def test_hires_runs_the_cascade_as_one_job_with_one_progress_bar(studio):
    request = Txt2ImgRequest(model=MODEL, prompt="a blue square on a black background", seed=6, width=64, height=64,
                             steps=6, hires=True, hires_steps=3, num_images=2)
    phases = []
    seen, result = progress_and_result(studio.submit(request), phases)
    assert [i.size for i in result.images] == [(256, 256)] * 2
    assert {total for _, total in seen} == {6 + 2 * 3}  # the base's steps, then each picture's upscaling
    # The bar says what runs: the base's steps are sampling, the stage's are said (the page shows the word).
    assert {phase for (step, _), phase in zip(seen, phases) if step <= 6} == {""}
    assert {phase for (step, _), phase in zip(seen, phases) if step > 6} == {"Upscaling"}
    assert [step for step, _ in seen] == sorted(step for step, _ in seen)
    settings = result.recipes[0].settings
    assert (settings["hires"], settings["hires_scale"], settings["hires_steps"]) == (True, 4, 3)
    # The base picture of the cascade is the plain run's: the stage adds detail, it does not redraw.
    plain = studio.submit(Txt2ImgRequest(model=MODEL, prompt=request.prompt, seed=6, width=64, height=64, steps=6)).result()
    assert "hires" not in plain.recipes[0].settings
    small = np.asarray(result.images[0].resize((64, 64), Image.Resampling.BOX), float)
    assert np.abs(small - np.asarray(plain.images[0], float)).mean() < 10


def test_a_picture_sent_larger_comes_back_at_its_size_on_models_that_cascade():
    assert [back_scale((side, side), (64, 64), 4) for side in (64, 100, 128, 240, 256, 512)] == [1, 1, 2, 4, 4, 4]
    assert back_scale((320, 256), (64, 48), 4) == 4  # the longer sides decide
    assert back_scale((256, 256), (64, 64), 2) == 2  # no further than the model's stage goes
    assert back_scale((2048, 2048), (512, 512), 1) == 1  # a model without a default cascade: as it made it


@pytest.mark.parametrize("task", ["variations", "sketch"])
def test_a_sent_256_picture_is_worked_at_64_and_brought_back_through_the_stage(studio, task):
    """A 256² result sent on (Hires is the embedded model's default) comes back 256², through the stage under
    the same progress bar; the picture under it is the one the model makes from the 64² fitted input."""
    scene = sample_scene(np.random.default_rng(5))
    big = Image.fromarray(draw(scene, size=256))
    kind = {"variations": lambda image, **kw: VariationsRequest(image=image, **kw),
            "sketch": lambda image, **kw: SketchRequest(sketch=image, prompt=scene_text(
                [f"a {f.colour} {f.shape}" for f in scene.figures], scene.background), **kw)}[task]
    seen, result = progress_and_result(studio.submit(kind(big, model=MODEL, seed=4, steps=8, num_images=2)))
    assert [i.size for i in result.images] == [(256, 256)] * 2
    assert result.recipes[0].settings["upscaled"] == 4
    assert len({total for _, total in seen}) == 1 and [s for s, _ in seen] == sorted(s for s, _ in seen)
    assert seen[-1][0] == seen[-1][1]  # the bar ends full: the stage's steps were counted in it
    small = studio.submit(kind(big.resize((64, 64), Image.Resampling.LANCZOS), model=MODEL, seed=4, steps=8,
                               num_images=2)).result()
    assert small.images[0].size == (64, 64) and "upscaled" not in small.recipes[0].settings
    down = np.asarray(result.images[0].resize((64, 64), Image.Resampling.BOX), float)
    assert np.abs(down - np.asarray(small.images[0], float)).mean() < 12


def test_a_morph_between_two_sent_256_pictures_has_256_frames(studio):
    rng = np.random.default_rng(9)
    a, b = (Image.fromarray(draw(sample_scene(rng), size=256)) for _ in range(2))
    request = MorphRequest(model=MODEL, image_a=a, image_b=b, width=64, height=64, num_frames=3, steps=6, seed=1)
    seen, result = progress_and_result(studio.submit(request))
    assert [i.size for i in result.images] == [(256, 256)] * 3
    assert [r.settings["upscaled"] for r in result.recipes] == [4] * 3
    assert len({total for _, total in seen}) == 1 and seen[-1][0] == seen[-1][1]
    caption = studio.submit(MorphRequest(model=MODEL, prompt="a red circle", prompt_b="a blue circle", width=64,
                                         height=64, num_frames=2, steps=4, seed=1)).result()
    assert caption.images[0].size == (64, 64) and "upscaled" not in caption.recipes[0].settings
    # A frame between two captions goes through the stage unworded; one caption is the frames' own.
    between = MorphRequest(model=MODEL, image_a=a, image_b=b, prompt="a red circle", prompt_b="a blue circle")
    assert between.upscaling(a).prompt == "" and MorphRequest(model=MODEL, prompt="x").upscaling(a).prompt == "x"


def test_a_repaint_worked_smaller_than_its_area_goes_back_up_through_the_stage(studio):
    """Inpainting a 256² picture works at 64²: the repainted area comes back through the stage (not
    resized), and every pixel outside the feathered mask is still the input's, byte for byte."""
    original = Image.fromarray(draw(sample_scene(np.random.default_rng(8)), size=256))
    mask = np.zeros((256, 256), np.uint8)
    mask[96:176, 80:160] = 255
    request = InpaintRequest(model=MODEL, image=original, mask=Image.fromarray(mask), prompt="a blue square",
                             seed=2, steps=8, num_images=1, only_masked=False)
    result = studio.submit(request).result()
    settings = result.recipes[0].settings
    assert result.images[0].size == (256, 256)
    assert (settings["work_size"], settings["upscaled"]) == ([64, 64], 4)
    outside = feather(mask_array(Image.fromarray(mask), (256, 256)), request.mask_blur) == 0
    assert (np.asarray(result.images[0])[outside] == np.asarray(original)[outside]).all()
    # An area about twice the model's size comes back ×2 through the same (×4) stage, its steps in the bar.
    seen, twice = progress_and_result(studio.submit(InpaintRequest(
        model=MODEL, image=original, mask=Image.fromarray(mask), prompt="a blue square", seed=2, steps=8,
        num_images=1, padding=24)))
    assert (twice.recipes[0].settings["box"][2] - twice.recipes[0].settings["box"][0], twice.recipes[0].settings["upscaled"]) == (128, 2)
    base = 8 * 0.85  # the repaint's steps at its strength; the stage's two come after them
    assert seen[-1][0] == seen[-1][1] > base
    # A small area's box is worked at about its own size: no stage.
    near = studio.submit(InpaintRequest(model=MODEL, image=original, mask=Image.fromarray(mask), prompt="a blue square",
                                        seed=2, steps=8, num_images=1, padding=0)).result()
    assert "upscaled" not in near.recipes[0].settings


def test_hires_past_the_largest_size_is_refused_by_name(studio):
    limits = studio.limits(MODEL)
    with pytest.raises(ValidationError) as refusal:
        Txt2ImgRequest(model=MODEL, prompt="x", width=64, height=64, hires=True, hires_scale=3).validated(limits)
    assert refusal.value.field == "hires_scale"


def test_the_tab_fills_the_prompt_from_the_pictures_recipe(made, tmp_path):
    path = tmp_path / "made.png"
    path.write_bytes(made.pngs[0])
    assert described_by(str(path)) == (made.recipes[0].prompt, made.recipes[0].negative_prompt)
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    assert described_by(str(tmp_path / "plain.png")) == ("", "")
    (tmp_path / "text.png").write_text("not a picture")
    assert described_by(str(tmp_path / "text.png")) == ("", "")


def test_the_upscale_endpoint_over_http(client, tmp_path):
    Image.fromarray(draw(sample_scene(np.random.default_rng(5)))).save(tmp_path / "in.png")
    gallery, recipes = client.predict(image=handle_file(str(tmp_path / "in.png")), prompt="", scale=4, seed=3,
                                      api_name="/upscale")
    assert Image.open(gallery[0]["image"]).size == (256, 256) and recipes[0]["task"] == "upscale"
