"""Inpaint and outpaint: outside the feathered mask every byte is the input's; edge cases behave."""

import numpy as np
import pytest
from PIL import Image

from pipelines import InpaintRequest, OutpaintRequest, ValidationError
from pipelines.tasks.inpaint import SEAM_THRESHOLD, finished_edge
from pipelines.tasks.masks import composite, extend_canvas, feather, grow, mask_array, match_colour, seam_score
from tests.conftest import TINY, as_array


def scene(width=64, height=64, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def box_mask(width, height, box):
    mask = np.zeros((height, width), np.uint8)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = 255
    return Image.fromarray(mask, "L")


def outside_unchanged(original, result, mask, blur):
    soft = feather(mask_array(mask, original.size), blur)
    outside = soft == 0
    return (as_array(result)[outside] == as_array(original)[outside]).all(), outside.sum()


@pytest.mark.parametrize("only_masked", [False, True])
@pytest.mark.parametrize("model", [TINY, "shapes"])
def test_pixels_outside_the_mask_are_bit_identical(tiny_studio, model, only_masked):
    image = scene()
    mask = box_mask(64, 64, (20, 24, 40, 44))
    req = InpaintRequest(model=model, prompt="a red circle", image=image, mask=mask, seed=1, steps=4,
                         num_images=2, only_masked=only_masked, mask_blur=3)
    result = tiny_studio.inpaint(req).result()
    for out in result.images:
        same, count = outside_unchanged(image, out, mask, 3)
        assert same and count > 2000
        assert (as_array(out)[28:40, 24:36] != as_array(image)[28:40, 24:36]).any()  # the inside did change
    settings = result.recipes[0].settings
    assert settings["mask_hash"] and settings["seam"] is not None and settings["only_masked"] == only_masked
    assert (settings["edge"] == "clean") == (settings["seam"] <= SEAM_THRESHOLD) or settings["edge"] == "blended"


@pytest.mark.parametrize("size,box", [((64, 64), (30, 30, 31, 31)), ((64, 64), (0, 0, 10, 64)), ((60, 44), (5, 5, 20, 20))])
def test_one_pixel_border_touching_and_odd_sized_masks_work(tiny_studio, size, box):
    image = scene(*size)
    mask = box_mask(*size, box)
    req = InpaintRequest(model=TINY, prompt="x", image=image, mask=mask, seed=2, steps=3, mask_blur=2)
    out = tiny_studio.inpaint(req).result().images[0]
    assert out.size == size
    assert outside_unchanged(image, out, mask, 2)[0]


def test_outpainting_keeps_the_original_exactly(tiny_studio):
    image = scene(48, 40)
    req = OutpaintRequest(model=TINY, prompt="x", image=image, left=16, top=8, right=0, bottom=16, seed=3, steps=3)
    out = tiny_studio.outpaint(req).result().images[0]
    assert out.size == (64, 64)
    assert (as_array(out)[8:48, 16:64] == as_array(image)).all()
    assert (as_array(out)[:8] != as_array(out)[8:9]).any()  # the new border was painted, not just copied


@pytest.mark.parametrize("task", ["inpaint", "outpaint"])
def test_few_steps_at_a_low_strength_still_paint(tiny_studio, task):
    """1 step × strength 0.5 leaves diffusers no denoising step; one runs instead."""
    image = scene(48, 48)
    common = dict(model=TINY, prompt="x", image=image, seed=3, steps=1, strength=0.5, color_correction=False)
    if task == "inpaint":
        req, start = InpaintRequest(**common, mask=box_mask(48, 48, (16, 16, 32, 32))), image
    else:
        req, start = OutpaintRequest(**common, right=16), extend_canvas(image, 0, 16, 0, 0)[0]
    out = tiny_studio.submit(req).result().images[0]
    assert out.size == start.size
    assert as_array(out).tobytes() != as_array(start).tobytes()  # a step painted something


def test_empty_mask_is_refused_with_a_clear_message(tiny_studio):
    req = InpaintRequest(model=TINY, prompt="x", image=scene(), mask=Image.new("L", (64, 64), 0))
    with pytest.raises(ValidationError, match="mask.*empty"):
        tiny_studio.inpaint(req)  # refused before a job exists


def test_full_mask_repaints_everything(tiny_studio):
    image = scene()
    req = InpaintRequest(model=TINY, prompt="x", image=image, mask=Image.new("L", (64, 64), 255), seed=1, steps=3)
    out = tiny_studio.inpaint(req).result().images[0]
    assert (as_array(out) != as_array(image)).mean() > 0.5


def test_mask_of_another_size_is_scaled_not_misaligned():
    mask = box_mask(32, 32, (0, 0, 16, 16))  # top-left quarter at half size
    binary = mask_array(mask, (64, 64))
    assert binary.shape == (64, 64) and binary[:32, :32].all() and not binary[32:, 32:].any()


def test_non_binary_and_alpha_only_masks():
    grey = Image.fromarray(np.array([[100, 200]], np.uint8), "L")
    assert mask_array(grey, (2, 1)).tolist() == [[0, 255]]
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[1:3, 1:3, 3] = 255  # painted alpha, black colour: the editor's kind of layer
    binary = mask_array(Image.fromarray(rgba, "RGBA"), (4, 4))
    assert binary[1:3, 1:3].all() and binary.sum() == 4 * 255


def test_grow_and_shrink():
    binary = np.zeros((21, 21), np.uint8)
    binary[8:13, 8:13] = 255
    assert (grow(binary, 2) > 0).sum() > (binary > 0).sum() > (grow(binary, -1) > 0).sum()


def test_colour_correction_lowers_the_seam_on_a_constructed_case():
    original = np.full((64, 64, 3), (120, 160, 200), np.uint8)
    binary = np.asarray(box_mask(64, 64, (16, 16, 48, 48)))
    generated = original.copy()
    generated[binary > 0] = (160, 120, 90)  # the repaint came out in the wrong colour cast
    soft = feather(binary, 2)
    plain = composite(original, generated, soft)
    corrected = composite(original, match_colour(generated, original, binary), soft)
    assert seam_score(corrected, binary) < seam_score(plain, binary) / 2
    assert (corrected[soft == 0] == original[soft == 0]).all()


def halo_case():
    """Issue 14's halo, made by hand: a band 2 px wide just inside the mask edge, darker than the light
    half of the picture and lighter than its dark half, around a repaint that is otherwise right."""
    original = np.zeros((64, 64, 3), np.uint8)
    original[:, :32] = (245, 240, 235)
    original[:, 32:] = (20, 30, 60)
    binary = np.asarray(box_mask(64, 64, (12, 16, 52, 48)))
    generated = original.copy()
    generated[26:38, 26:38] = (200, 30, 30)  # what was asked for, well inside the mask
    band = (binary > 0) & (grow(binary, -2) == 0)
    generated[band & (np.arange(64) < 32)] = (170, 165, 160)
    generated[band & (np.arange(64) >= 32)] = (70, 80, 110)
    return original, binary, generated


@pytest.mark.parametrize("blur", [0, 4])
def test_a_halo_that_varies_along_the_border_is_blended_below_the_threshold(blur):
    original, binary, generated = halo_case()
    soft = feather(binary, blur)
    plain_seam = seam_score(composite(original, generated, soft), binary)
    global_seam = seam_score(composite(original, match_colour(generated, original, binary), soft), binary)
    assert plain_seam > global_seam > SEAM_THRESHOLD  # one global shift cannot lower it enough

    result, seam, edge = finished_edge(original, generated, binary, soft, correct=True)
    assert seam < SEAM_THRESHOLD and edge == "blended"
    assert seam == seam_score(result, binary)
    assert (result[soft == 0] == original[soft == 0]).all()  # outside the feathered mask: byte-identical
    assert (result[28:36, 28:36] == generated[28:36, 28:36]).all()  # the repaint's middle keeps its colour


def test_without_correction_the_halo_is_left_and_said_to_show():
    original, binary, generated = halo_case()
    soft = feather(binary, 4)
    result, seam, edge = finished_edge(original, generated, binary, soft, correct=False)
    assert edge == "visible" and seam > SEAM_THRESHOLD
    assert (result == composite(original, generated, soft)).all()


def test_a_clean_edge_is_not_touched():
    original, binary, _ = halo_case()
    generated = original.copy()
    generated[26:38, 26:38] = (200, 30, 30)
    soft = feather(binary, 4)
    result, seam, edge = finished_edge(original, generated, binary, soft, correct=True)
    assert edge == "clean" and seam <= SEAM_THRESHOLD
    assert (result == composite(original, generated, soft)).all()


def test_a_dedicated_inpainting_checkpoint_shares_the_autoencoder_and_text_encoder(tiny_model_dir, tmp_path):
    import shutil

    from diffusers import UNet2DConditionModel

    from tests.conftest import make_studio, tiny_registry

    folder = tmp_path / "tiny-inpaint"
    shutil.copytree(tiny_model_dir, folder)
    config = UNet2DConditionModel.load_config(folder / "unet")
    UNet2DConditionModel.from_config({**config, "in_channels": 9}).save_pretrained(folder / "unet")
    studio = make_studio(tiny_registry(tiny_model_dir, inpaint_source=str(folder)))
    base = studio.runner.manager.pipeline(TINY, "txt2img")
    view = studio.runner.manager.pipeline(TINY, "inpaint")
    assert view.unet.config.in_channels == 9 and view.unet is not base.unet
    assert view.vae is base.vae and view.text_encoder is base.text_encoder
    image, mask = scene(), box_mask(64, 64, (16, 16, 40, 40))
    out = studio.inpaint(InpaintRequest(model=TINY, prompt="x", image=image, mask=mask, seed=1, steps=3)).result().images[0]
    assert outside_unchanged(image, out, mask, 4)[0]
