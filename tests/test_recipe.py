"""Recipes travel inside the PNG and come back whole."""

import io

from PIL import Image

from pipelines.front.recipe import Recipe, attach, image_id, png_bytes, read_recipe


def recipe(**kw):
    base = dict(task="txt2img", model="shapes", prompt="a red circle", seed=7, steps=20, guidance_scale=5.0,
                scheduler="Euler a", width=64, height=64, notices=("n",), parent="abc")
    return Recipe(**{**base, **kw})


def test_png_round_trip_keeps_every_field():
    image = Image.new("RGB", (64, 64), (200, 10, 10))
    r = recipe(image_id=image_id(image), settings={"box": [0, 0, 64, 64], "strength": 0.5})
    data = png_bytes(image, r)
    assert read_recipe(data) == r
    reopened = Image.open(io.BytesIO(data))
    assert "Steps: 20, Sampler: Euler a, CFG scale: 5, Seed: 7" in reopened.info["parameters"]
    assert "Denoising strength: 0.5" in reopened.info["parameters"]


def test_recipes_of_earlier_versions_read_their_task_settings_into_settings():
    """Earlier recipes kept every task's settings as top-level fields (most of them null) and in `extra`."""
    old = {**recipe().to_dict(), "strength": 0.85, "similarity": None, "seam": 3.5, "extra": {"box": [0, 0, 8, 8]}}
    del old["settings"]
    assert Recipe.from_dict(old).settings == {"strength": 0.85, "seam": 3.5, "box": [0, 0, 8, 8]}


def test_values_are_what_restoring_fills_in():
    values = recipe(settings={"guidance_rescale": 0.7}).values()
    assert values["guidance_rescale"] == 0.7 and values["prompt"] == "a red circle" and values["seed"] == 7
    assert not {"task", "parent", "image_id", "versions", "notices", "settings"} & set(values)


def test_attach_writes_through_a_plain_png_save(tmp_path):
    image = attach(Image.new("RGB", (8, 8)), recipe(prompt="née 👩‍👩‍👧"))
    from gradio.processing_utils import encode_pil_to_bytes

    assert read_recipe(encode_pil_to_bytes(image, "png")).prompt == "née 👩‍👩‍👧"


def test_an_image_without_a_recipe_reads_as_none():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    assert read_recipe(buffer.getvalue()) is None


def test_image_id_depends_on_pixels_only():
    a, b = Image.new("RGB", (8, 8), 1), Image.new("RGB", (8, 8), 1)
    assert image_id(a) == image_id(b) != image_id(Image.new("RGB", (8, 8), 2))
