"""The page's wiring, without a browser or a model: every control fills a request field of its own name,
every model-dependent control follows the picker, and "Send to" carries the image's id everywhere."""

import dataclasses

import gradio as gr
import pytest
from PIL import Image

from pipelines import TASKS, Registry, Studio
from tests.test_runner import CannedRunner
from ui.app import build_page


@pytest.fixture(scope="module")
def tabs():
    _, tabs = build_page(Studio(CannedRunner(), Registry()), model="shapes")
    return tabs


def test_every_registered_task_with_a_module_has_a_tab_in_registry_order(tabs):
    assert list(tabs) == [name for name in TASKS.names if name != "outpaint"]  # Outpaint lives in Inpaint


def test_every_control_is_wired_to_a_request_field_of_its_name(tabs):
    for name, tab in tabs.items():
        fields = {f.name for f in dataclasses.fields(TASKS.get(name).request)}
        if name == "inpaint":  # the tab serves Outpaint too
            fields |= {f.name for f in dataclasses.fields(TASKS.get("outpaint").request)}
        assert set(tab.controls.fields) <= fields, (name, set(tab.controls.fields) - fields)
        assert {"prompt", "seed", "steps", "guidance_scale", "scheduler", "negative_prompt"} <= set(tab.controls.fields)


def test_every_tab_follows_the_model_with_its_limits_and_defaults(tabs):
    sdxl = Registry().get("sdxl")
    for name, tab in tabs.items():
        updates = tab.controls.follow(sdxl)
        steps = updates[tab.controls.fields["steps"]]
        scheduler = updates[tab.controls.fields["scheduler"]]
        assert steps.value == 30 and updates[tab.controls.fields["guidance_scale"]].value == 6.0, name
        assert scheduler.choices == [(s, s) for s in sdxl.schedulers] and scheduler.value in sdxl.schedulers, name
        if "width" in tab.controls.fields:
            width = updates[tab.controls.fields["width"]]
            assert (width.minimum, width.maximum, width.value) == (512, 1536, 1024), name


def test_a_restored_value_is_kept_where_the_model_allows_it(tabs):
    morph = tabs["morph"].controls
    turbo = Registry().get("sd-turbo")
    updates = morph.restore(turbo, {"scheduler": "UniPC", "steps": 3, "prompt_b": "a blue circle", "position": 0.5})
    assert updates[morph.fields["scheduler"]].value == "Euler"  # UniPC is not offered: Morph's own preference
    assert updates[morph.fields["steps"]].value == 3 and updates[morph.fields["prompt_b"]] == "a blue circle"


def test_send_to_carries_the_image_and_its_id_into_every_tab_that_takes_one(tabs):
    receiving = {name: tab.receive for name, tab in tabs.items() if tab.receive}
    assert set(receiving) == {"variations", "morph", "inpaint", "sketch"}
    image = Image.new("RGB", (8, 8), (1, 2, 3))
    for name, receive in receiving.items():
        values = receive.accept(image, "0123abcd")
        assert isinstance(receive.outputs[-1], gr.State) and values[-1] == "0123abcd", name
        picture = values[0]["background"] if isinstance(values[0], dict) else values[0]
        assert picture is image, name


def test_a_refusal_in_the_page_names_the_label_and_over_http_the_parameter():
    from pipelines import ValidationError
    from ui.common import field_message

    error = ValidationError("prompt_b", "must not be empty")
    assert field_message(error, {"prompt_b": "To"}) == "To: must not be empty"
    assert field_message(error, {}) == "prompt_b: must not be empty"


def test_a_resized_upload_is_said_with_what_it_became_and_why(tmp_path):
    from pipelines import VariationsRequest

    big, small = tmp_path / "big.png", tmp_path / "small.png"
    Image.new("RGB", (3000, 3000), "red").save(big)
    Image.new("RGB", (32, 32), "red").save(small)
    studio = Studio(CannedRunner(), Registry(), max_pixels=1024 * 1024)

    def notices(model, path):
        return studio.submit(VariationsRequest(model=model, image=str(path), num_images=1)).result().notices

    assert notices("shapes", big)[0] == "The image (3000×3000) was scaled down to 64×64: the size this model works at."
    assert notices("shapes", small)[0] == "The image (32×32) was scaled up to 64×64: the size this model works at."
    assert notices("sd15", tmp_path / "big.png")[0].endswith("to 512×512: the size this model works at.")
    mask = tmp_path / "mask.png"
    Image.new("L", (3000, 3000), 255).save(mask)
    inpaint = TASKS.get("inpaint").request(model="sd15", image=str(big), mask=str(mask), prompt="x")
    said = studio.submit(inpaint).result().notices
    assert said[0] == "The image (3000×3000) was scaled down to 1024×1024: this server takes at most 1,048,576 pixels."
