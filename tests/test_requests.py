"""Every validation rule: a bad value is refused with a message that names its field."""

import math

import pytest
from PIL import Image

from pipelines import (
    InpaintRequest,
    Limits,
    MorphRequest,
    OutpaintRequest,
    Txt2ImgRequest,
    ValidationError,
    VariationsRequest,
)
from pipelines.front.requests import MAX_PROMPT_CHARS, clean_text

LIMITS = Limits(min_size=64, max_size=1024, max_pixels=1024 * 1024, max_images=8, models=("shapes", "sd15"))


def txt(**kw):
    base = dict(model="shapes", prompt="a red circle", width=512, height=512)
    return Txt2ImgRequest(**{**base, **kw}).validated(LIMITS)


def refused(field, **kw):
    with pytest.raises(ValidationError) as e:
        txt(**kw)
    assert e.value.field == field, str(e.value)
    assert str(e.value).startswith(f"{field}: ")
    return str(e.value)


def test_a_good_request_is_normalised():
    r = txt(steps=20.0, seed="42", num_images=2.0, guidance_scale="7.5")
    assert (r.steps, r.seed, r.num_images, r.guidance_scale) == (20, 42, 2, 7.5)
    assert isinstance(r.steps, int) and isinstance(r.seed, int)


@pytest.mark.parametrize("steps", [0, -1, 151, 10**6, 20.5, math.nan, math.inf, -math.inf, "many", None, True])
def test_steps_are_a_whole_number_from_1_to_150(steps):
    refused("steps", steps=steps)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1, 30.5, "x"])
def test_guidance_is_finite_and_in_range(value):
    refused("guidance_scale", guidance_scale=value)


@pytest.mark.parametrize("size", [0, 8, 100_000, 516, 63.5])
def test_width_must_be_a_multiple_of_8_within_the_model_limits(size):
    refused("width", width=size)


def test_total_pixels_are_capped():
    limits = Limits(max_size=2048, max_pixels=512 * 512, models=("shapes",))
    with pytest.raises(ValidationError, match="width"):
        Txt2ImgRequest(model="shapes", prompt="x", width=1024, height=1024).validated(limits)


@pytest.mark.parametrize("n", [0, 9, 10**4, 2.5])
def test_one_to_eight_images(n):
    refused("num_images", num_images=n)


@pytest.mark.parametrize("seed", [-2, 2**32, 2**64, 1.5])
def test_seed_range(seed):
    refused("seed", seed=seed)


def test_seed_limits_are_accepted():
    assert txt(seed=-1).seed == -1
    assert txt(seed=2**32 - 1).seed == 2**32 - 1


@pytest.mark.parametrize("name", ["Heun++", "../x.ckpt", "", None])
def test_scheduler_must_be_offered(name):
    refused("scheduler", scheduler=name)


@pytest.mark.parametrize("model", ["../x.ckpt", "https://example.com/model.safetensors", "/etc/passwd", ""])
def test_model_is_picked_by_name_never_by_path(model):
    message = refused("model", model=model)
    assert "shapes" in message


def test_prompt_required_and_capped():
    refused("prompt", prompt="   ")
    message = refused("prompt", prompt="x" * (MAX_PROMPT_CHARS + 1))
    assert str(MAX_PROMPT_CHARS) in message
    refused("prompt", prompt="x" * 10**6)


def test_prompt_text_is_cleaned_not_refused():
    assert clean_text("prompt", "a\x00red\x07 circle") == "ared circle"
    assert clean_text("prompt", "a \ud800 circle") == "a ? circle"  # lone surrogate
    family = "👩‍👩‍👧 مرحبا <script>alert(1)</script>"
    assert clean_text("prompt", family) == family  # emoji joiners, RTL, markup kept as text


def test_variations_need_an_image_and_a_dial_in_range():
    base = dict(model="shapes")
    with pytest.raises(ValidationError, match="image"):
        VariationsRequest(**base).validated(LIMITS)
    with pytest.raises(ValidationError, match="similarity"):
        VariationsRequest(**base, image=Image.new("RGB", (64, 64)), similarity=1.5).validated(LIMITS)
    with pytest.raises(ValidationError, match="mode"):
        VariationsRequest(**base, image=Image.new("RGB", (64, 64)), mode="pickle").validated(LIMITS)


def test_images_over_the_pixel_limit_are_refused():
    limits = Limits(max_pixels=100 * 100, models=("shapes",))
    with pytest.raises(ValidationError, match="image"):
        VariationsRequest(model="shapes", image=Image.new("RGB", (200, 200))).validated(limits)


def test_morph_limits():
    base = dict(model="shapes", prompt="a", prompt_b="b", width=64, height=64)
    with pytest.raises(ValidationError, match="num_frames"):
        MorphRequest(**base, num_frames=10**4).validated(LIMITS)
    with pytest.raises(ValidationError, match="prompt_b"):
        MorphRequest(**{**base, "prompt_b": ""}).validated(LIMITS)
    with pytest.raises(ValidationError, match="image_b"):
        MorphRequest(**base, image_a=Image.new("RGB", (64, 64))).validated(LIMITS)
    assert MorphRequest(**base, num_frames=8.0).validated(LIMITS).num_frames == 8


def test_inpaint_needs_a_mask_and_outpaint_a_side():
    image = Image.new("RGB", (64, 64))
    with pytest.raises(ValidationError, match="mask"):
        InpaintRequest(model="shapes", prompt="x", image=image).validated(LIMITS)
    with pytest.raises(ValidationError, match="left"):
        OutpaintRequest(model="shapes", prompt="x", image=image).validated(LIMITS)
    with pytest.raises(ValidationError, match="strength"):
        InpaintRequest(model="shapes", prompt="x", image=image, mask=image, strength=0).validated(LIMITS)
