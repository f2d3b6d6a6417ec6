"""Upscaling for Stable Diffusion models and past one tile: Stability's ×4 and ×2 stages (tiny random
architectures saved at test time), a larger stage serving a smaller scale, the hires pass for a model
without a stage, and the tiles' blending measured with the project's seam measure."""


import numpy as np
import pytest
from PIL import Image

from pipelines import Cancelled, Registry, Studio
from pipelines.device.upscaling import OVERLAP, STAGE_TILE, ramp, starts, tiled
from pipelines.front.registry import Upscaler
from pipelines.tasks.masks import seam_score
from pipelines.tasks.upscale import UpscaleRequest
from shapeworld.world import draw, sample_scene
from tests.conftest import (
    TINY,
    as_array,
    build_tiny_x2_upscaler,
    build_tiny_x4_upscaler,
    make_studio,
    tiny_preset,
)

BOTH = "tiny-up"  # a ×4 and a ×2 stage
X4_ONLY = "tiny-x4"
PROMPT = "a red circle"
STAGE = dict(steps=2, scheduler="Euler a", new_detail=0.1)  # what the page fills in from the stage's preset


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    return (build_tiny_x4_upscaler(tmp_path_factory.mktemp("tiny-x4")),
            build_tiny_x2_upscaler(tmp_path_factory.mktemp("tiny-x2")))


@pytest.fixture(scope="module")
def up_studio(tiny_model_dir, stages) -> Studio:
    x4, x2 = (Upscaler(str(folder), scale, steps=2, guidance=0.0, detail=0.1) for folder, scale in zip(stages, (4, 2)))
    presets = (
        tiny_preset(tiny_model_dir),  # no stage: the hires pass
        tiny_preset(tiny_model_dir, name=BOTH, label="Tiny with both stages", upscalers=(x4, x2)),
        tiny_preset(tiny_model_dir, name=X4_ONLY, label="Tiny with a ×4 stage", upscalers=(x4,)),
    )
    studio = make_studio(Registry(Registry().presets + presets))
    yield studio
    studio.close()


def picture(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """A shapes scene (flat colours and hard edges), cropped to `width`×`height`."""
    scene = sample_scene(np.random.default_rng(seed))
    return Image.fromarray(draw(scene, size=max(width, height))).crop((0, 0, width, height))


def upscale(studio, **kw):
    request = UpscaleRequest(**{"model": BOTH, "prompt": PROMPT, "image": picture(), "seed": 7, **STAGE, **kw})
    return studio.submit(request).result()


def manager(studio):
    return studio.runner.manager


# -- Stability's stages through the studio -----------------------------------------------------------


def test_x4_stage_gives_four_times_the_size_and_adds_nothing_to_the_pixels(up_studio, stages):
    """The ×4 stage is called as diffusers documents it: the studio's result is a direct call's."""
    import torch
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionUpscalePipeline

    result = upscale(up_studio, scale=4)
    assert result.images[0].size == (256, 192)
    assert isinstance(manager(up_studio).pipeline(BOTH, "upscale4"), StableDiffusionUpscalePipeline)

    pipe = StableDiffusionUpscalePipeline.from_pretrained(stages[0], dtype=torch.float32)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    direct = pipe(prompt=PROMPT, image=picture(), noise_level=round(0.1 * 350), num_inference_steps=2,
                  guidance_scale=0.0, generator=torch.Generator("cpu").manual_seed(7)).images[0]
    assert np.abs(as_array(result.images[0]).astype(int) - as_array(direct)).max() <= 1


def test_x2_uses_the_x2_stage_whatever_the_sampler(up_studio):
    """The ×2 stage steps with denoised latents, which only Euler takes: the page's sampler (the ×4 stage's
    Euler a) must not make it fail."""
    from diffusers import StableDiffusionLatentUpscalePipeline

    result = upscale(up_studio, scale=2, scheduler="Euler a")
    assert upscale(up_studio, scale=2, scheduler="DPM++ 2M").images[0].size == (128, 96)
    assert result.images[0].size == (128, 96)
    assert isinstance(manager(up_studio).pipeline(BOTH, "upscale2"), StableDiffusionLatentUpscalePipeline)


def test_a_x4_stage_serves_x2_scaled_down(up_studio):
    """Without a ×2 stage the ×4 one serves (the same resident pipeline), its result resized to ×2."""
    two, four = upscale(up_studio, model=X4_ONLY, scale=2), upscale(up_studio, model=X4_ONLY, scale=4)
    assert manager(up_studio).pipeline(X4_ONLY, "upscale2") is manager(up_studio).pipeline(X4_ONLY, "upscale4")
    assert two.images[0].size == (128, 96)
    expected = four.images[0].resize((128, 96), Image.Resampling.LANCZOS)
    assert (as_array(two.images[0]) == as_array(expected)).all()


def test_without_a_stage_the_hires_pass_redraws_the_resized_picture(up_studio):
    from diffusers import StableDiffusionImg2ImgPipeline

    plain = upscale(up_studio, model=TINY, scale=2, new_detail=0.0, steps=4).images[0]
    assert isinstance(manager(up_studio).pipeline(TINY, "upscale2"), StableDiffusionImg2ImgPipeline)
    resized = picture().resize((128, 96), Image.Resampling.LANCZOS)
    assert (as_array(plain) == as_array(resized)).all()  # nothing to redraw: the plain resize
    redrawn = upscale(up_studio, model=TINY, scale=2, new_detail=0.5, steps=4).images[0]
    assert redrawn.size == (128, 96)
    assert np.abs(as_array(redrawn).astype(int) - as_array(resized)).mean() > 1


def test_a_hires_pass_past_the_models_size_is_redrawn_tile_by_tile(up_studio):
    """The tiny model draws 128² best: ×2 of 100×80 is redrawn as four tiles of it, one progress bar."""
    job = up_studio.submit(UpscaleRequest(model=TINY, prompt=PROMPT, image=picture(100, 80), scale=2, seed=2,
                                          steps=4, scheduler="Euler a", new_detail=0.5))
    totals = {event.total for event in job.events() if event.step}  # not the loading message
    assert job.result().images[0].size == (200, 160)
    assert totals == {4 * 2}  # four tiles of int(4 × 0.5) steps


def test_recipe_records_scale_detail_and_lineage(up_studio, tmp_path):
    studio = Studio(up_studio.runner, up_studio.registry, outputs=str(tmp_path))
    first = studio.submit(UpscaleRequest(model=BOTH, prompt=PROMPT, image=picture(), scale=2, seed=3, **STAGE)).result()
    parent = first.recipes[0].image_id
    second = studio.submit(UpscaleRequest(model=BOTH, prompt=PROMPT, image=first.images[0], scale=2, seed=4,
                                          **{**STAGE, "new_detail": 0.2}, parent=parent)).result()
    recipe = second.recipes[0]
    assert (recipe.task, recipe.parent, recipe.width, recipe.height) == ("upscale", parent, 256, 192)
    assert (recipe.settings["scale"], recipe.settings["new_detail"]) == (2, 0.2)
    lineage = studio.library().lineage(None, recipe.image_id)
    assert [step["image_id"] for step in lineage][-2:] == [parent, recipe.image_id]


def test_stop_cancels_mid_run(up_studio):
    job = up_studio.submit(UpscaleRequest(model=BOTH, prompt=PROMPT, image=picture(), scale=4, seed=1,
                                         **{**STAGE, "steps": 60}))
    seen = 0
    for event in job.events():
        if event.total:
            seen = event.step
            if seen >= 2:
                job.cancel()
    with pytest.raises(Cancelled):
        job.result()
    assert seen <= 2 + 2


# -- tiles --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length, tile, overlap", [(200, 128, 16), (1000, 128, 16), (129, 128, 16), (128, 128, 16)])
def test_tiles_cover_the_side_overlapping_with_the_last_flush(length, tile, overlap):
    origins = starts(length, tile, overlap)
    assert origins[0] == 0 and origins[-1] + tile == max(length, tile)  # the last one ends at the end
    assert all(b - a <= tile - overlap for a, b in zip(origins, origins[1:]))  # every neighbour overlaps fully
    assert all(b > a for a, b in zip(origins, origins[1:]))


def test_neighbours_weights_sum_to_one_across_the_overlap():
    """A tile fades in over the one before it, which keeps one minus it: the mirror image of its rise."""
    rise = ramp(100, 32, first=False)
    assert (np.diff(rise[:32]) > 0).all() and 0 < rise[0] < 0.05 and (rise[32:] == 1).all()
    assert np.allclose(rise[:32] + rise[:32][::-1], 1)  # the tile before's weight, 1 − rise, is its mirror
    assert (ramp(100, 32, first=True) == 1).all()  # nothing before the first tile


def test_blended_tiles_keep_a_flat_colour_exactly():
    """Weights that sum to one everywhere, corners where four tiles meet included, leave a flat colour
    unchanged; each tile's own part is its own colour, and the overlap goes from one to the next."""
    flat = tiled(lambda piece, i: piece.resize((piece.width * 2, piece.height * 2)), Image.new("RGB", (300, 200), (90, 140, 30)), 2, 128)
    assert (as_array(flat) == (90, 140, 30)).all()

    def painted(piece, index):
        return Image.new("RGB", (piece.width * 2, piece.height * 2), (200 * index, 0, 0))

    row = as_array(tiled(painted, Image.new("RGB", (200, 100)), 2, 128))[0, :, 0].astype(int)
    overlap = 2 * max(8, round(128 * OVERLAP))
    second = 2 * starts(200, 128, overlap // 2)[1]
    assert (row[:second] == 0).all() and (row[second + overlap:] == 200).all()
    assert (np.diff(row[second:second + overlap]) >= 0).all() and row[second] < 10 and row[second + overlap - 1] > 190


def borders(size: tuple[int, int], scale: int, tile: int) -> tuple[list[int], list[int]]:
    """The result's columns and rows where a tile begins or the one before it ends."""
    overlap = max(8, round(tile * OVERLAP))

    def lines(length):
        origins = starts(length, tile, overlap)
        return sorted({scale * x for x in origins[1:]} | {scale * (x + tile) for x in origins[:-1]})

    return lines(size[0]), lines(size[1])


def tile_seam(image: Image.Image, columns: list[int], rows: list[int]) -> float:
    """The project's seam measure (the colour jump across a border, Lab) at the worst of these lines."""
    pixels = as_array(image)
    height, width = pixels.shape[:2]
    scores = []
    for x in columns:
        binary = np.zeros((height, width), np.uint8)
        binary[:, :x] = 1
        scores.append(seam_score(pixels, binary))
    for y in rows:
        binary = np.zeros((height, width), np.uint8)
        binary[:y] = 1
        scores.append(seam_score(pixels, binary))
    return max(scores)


def bicubic(piece: Image.Image, index: int) -> Image.Image:
    return piece.resize((piece.width * 4, piece.height * 4), Image.Resampling.BICUBIC)


def gradient(width: int, height: int) -> Image.Image:
    x, y = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    return Image.fromarray((np.stack([x, y, 1 - x * y], -1) * 255).round().astype(np.uint8))


@pytest.mark.parametrize("image", [gradient(300, 220), Image.fromarray(draw(sample_scene(np.random.default_rng(5)), size=300))],
                         ids=["gradient", "shapes"])
def test_tiled_work_matches_the_whole_and_shows_no_seam(image):
    whole, made = bicubic(image, 0), tiled(bicubic, image, 4, 128)
    difference = np.abs(as_array(made).astype(int) - as_array(whole))
    assert difference.max() <= 3 and difference.mean() < 0.05
    lines = borders(image.size, 4, 128)
    assert tile_seam(made, *lines) <= tile_seam(whole, *lines) + 0.1


def test_a_tile_the_work_returns_rounded_still_fills_its_place():
    """Stability's stages round a side to their autoencoder's factor (a 101-pixel-high strip comes back 400
    high at ×4, not 404): the tile is fitted to its place, so no row of the result is left empty."""

    def rounding(piece, index):
        return bicubic(piece.crop((0, 0, piece.width // 4 * 4, piece.height // 4 * 4)), index)

    image = gradient(200, 101)
    made = as_array(tiled(rounding, image, 4, 128)).astype(int)
    assert made.shape == (404, 800, 3)
    assert np.abs(made - as_array(bicubic(image, 0))).mean(axis=(1, 2)).max() < 4  # every row near the whole's


def test_a_colour_shift_between_tiles_fades_instead_of_showing():
    """Diffusion draws each tile a little differently; blended, a shift of 12 levels a tile adds less than
    one unit to the gradient's own colour change across the borders, far below a visible seam (the
    measure's 6, Inpaint's threshold), where pasting the tiles edge to edge shows it at once."""

    def shifted(piece, index):
        return Image.fromarray(np.clip(as_array(bicubic(piece, index)).astype(int) + 12 * index, 0, 255).astype(np.uint8))

    image = gradient(300, 220)
    lines = borders(image.size, 4, 128)
    blended = tiled(shifted, image, 4, 128)
    pasted = Image.new("RGB", (1200, 880))
    overlap = max(8, round(128 * OVERLAP))
    xs, ys = starts(300, 128, overlap), starts(220, 128, overlap)
    for index, (y, x) in enumerate((y, x) for y in ys for x in xs):
        pasted.paste(shifted(image.crop((x, y, x + 128, y + 128)), index), (x * 4, y * 4))
    assert tile_seam(blended, *lines) < tile_seam(bicubic(image, 0), *lines) + 1 < 6 < tile_seam(pasted, *lines)


def test_tiled_x4_through_the_sd_stage_is_its_tiles_blended(up_studio, monkeypatch):
    """200×150 is larger than the ×4 stage's tile: four tiles of the stage, laid into 800×600 by the blend
    the stand-ins above prove seamless. Random weights draw the same noise texture everywhere, on which no
    seam measure can tell a hard edge (the project's measured 28 pasted edge to edge, 25 blended, 22 away
    from the borders), so here the result is checked against the stage's own tiles: whole where a tile
    covers alone, between its neighbours where they overlap."""
    import pipelines.device.upscaling as upscaling

    pieces = []

    def recording(work, image, scale, tile):
        return tiled(lambda piece, index: pieces.append(work(piece, index)) or pieces[-1], image, scale, tile)

    monkeypatch.setattr(upscaling, "tiled", recording)
    tile = STAGE_TILE[type(manager(up_studio).pipeline(BOTH, "upscale4"))]
    image = picture(200, 150, seed=2)
    made = as_array(upscale(up_studio, image=image, scale=4, steps=1).images[0]).astype(int)
    assert made.shape == (600, 800, 3) and len(pieces) == 4
    assert all(p.size == (4 * tile, 4 * tile) for p in pieces)
    overlap = max(8, round(tile * OVERLAP))
    (x0, x1), (y0, y1) = (4 * np.array(starts(side, tile, overlap)) for side in image.size)
    first, second, _, last = (as_array(p).astype(int) for p in pieces)
    fade = 4 * overlap
    assert (made[:y1, :x1] == first[:y1, :x1]).all()  # the first tile alone
    assert (made[y1 + fade:, x1 + fade:] == last[fade:, fade:]).all()  # the last tile past its fades
    a, b, blend = first[:y1, x1:4 * tile], second[:y1, :4 * tile - x1], made[:y1, x1:4 * tile]
    assert (blend >= np.minimum(a, b) - 1).all() and (blend <= np.maximum(a, b) + 1).all()
    assert np.abs(blend - a)[:, :8].mean() < np.abs(blend - b)[:, :8].mean()  # fading in from the first
    assert np.abs(blend - b)[:, -8:].mean() < np.abs(blend - a)[:, -8:].mean()  # to the second

