"""AUTOMATIC1111's names and shapes, translated: the adapter's table, without a server."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from api import a1111
from pipelines import InpaintRequest, Registry, Txt2ImgRequest, ValidationError


@pytest.fixture(scope="module")
def shapes():
    return Registry().get("shapes")


def test_fields_take_atelier_names_and_the_model_fills_what_is_left_out(shapes):
    values = a1111.request_values({"prompt": "a", "cfg_scale": 7, "batch_size": 3, "seed": None, "eta": 1},
                                  Txt2ImgRequest, shapes)
    assert values == {"prompt": "a", "guidance_scale": 7, "num_images": 3, "width": shapes.width,
                      "height": shapes.height, "steps": shapes.steps, "scheduler": shapes.scheduler}


def test_inpaint_fields_and_fill_numbers(shapes):
    body = {"denoising_strength": 0.5, "mask_blur": 3, "inpaint_full_res": False, "inpainting_fill": 2,
            "inpaint_full_res_padding": 8, "width": 512}
    values = a1111.request_values(body, InpaintRequest, shapes)
    assert values["strength"] == 0.5 and values["fill"] == "noise" and values["only_masked"] is False
    assert values["padding"] == 8 and values["mask_blur"] == 3 and "width" not in values  # Inpaint has no size


def test_sampler_and_schedule_join_where_that_names_a_sampler():
    offered = ("Euler a", "DPM++ 2M Karras")
    assert a1111.sampler_named("DPM++ 2M", "karras", offered) == "DPM++ 2M Karras"
    assert a1111.sampler_named("Euler a", "automatic", offered) == "Euler a"
    assert a1111.sampler_named("Euler a", "karras", offered) == "Euler a"  # no such pair: the sampler as sent


def test_refusals_use_the_clients_names():
    assert a1111.refusal(ValidationError("guidance_scale", "31 is out of range 0–30")) == "cfg_scale: 31 is out of range 0–30"
    assert a1111.refusal(ValidationError("prompt", "must not be empty")) == "prompt: must not be empty"


def test_ignored_settings_are_said():
    notices = a1111.ignored_notices({"tiling": True, "restore_faces": False, "override_settings": {"sd_vae": "x"}})
    assert len(notices) == 2 and notices[0].startswith("tiling") and "sd_vae" in notices[1]


def test_checkpoint_names_as_clients_send_them():
    assert a1111.checkpoint_name("shapes.safetensors [9485e750fd]") == "shapes"
    assert a1111.checkpoint_name(" sd15 ") == "sd15"


def test_parameters_text_reads_back_as_automatic1111_parses_it():
    text = 'a cat, (fur:1.2)\nsecond line\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x768, Lora hashes: "a: 1, b: 2"'
    found = a1111.parse_parameters(text)
    assert found["Prompt"] == "a cat, (fur:1.2)\nsecond line" and found["Negative prompt"] == "dog"
    assert found["Seed"] == "5" and found["Size-1"] == "512" and found["Size-2"] == "768"
    assert found["Lora hashes"] == '"a: 1, b: 2"'


@pytest.mark.parametrize("text", ["", "%%%", "aGVsbG8=", "https://example.com/a.png", None])
def test_pictures_that_cannot_be_read_are_refused_by_field(text):
    with pytest.raises(ValidationError, match="^init_images: "):
        a1111.decode_image("init_images", text)


def test_pictures_arrive_as_base64_or_data_urls():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 4), (1, 2, 3)).save(buffer, format="PNG")
    raw = base64.b64encode(buffer.getvalue()).decode()
    for text in (raw, f"data:image/png;base64,{raw}"):
        assert a1111.decode_image("image", text).size == (8, 4)


def test_enable_hr_maps_to_the_hires_pass_with_the_clients_scale_and_the_upscalers_own_steps(shapes):
    body = {"prompt": "a", "enable_hr": True, "hr_scale": 2.0, "hr_second_pass_steps": 0, "denoising_strength": 0.2}
    values = a1111.request_values(body, Txt2ImgRequest, shapes)
    assert values["hires"] is True and values["hires_scale"] == 2.0 and values["hires_detail"] == 0.2
    assert values["hires_steps"] == shapes.upscale_steps  # A1111's 0 is "the default", not zero steps
    plain = a1111.request_values({**body, "enable_hr": False}, Txt2ImgRequest, shapes)
    assert not [name for name in plain if name.startswith("hires")]
    assert a1111.ignored_notices(body) == []  # the pass is done, not ignored
