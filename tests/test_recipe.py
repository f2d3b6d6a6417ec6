"""Recipes travel inside the PNG and come back whole."""

import io

from PIL import Image

from pipelines.recipe import Recipe, attach, image_id, png_bytes, read_recipe


def recipe(**kw):
    base = dict(task="txt2img", model="shapes", prompt="a red circle", seed=7, steps=20, guidance_scale=5.0,
                scheduler="Euler a", width=64, height=64, notices=("n",), parent="abc")
    return Recipe(**{**base, **kw})


def test_png_round_trip_keeps_every_field():
    image = Image.new("RGB", (64, 64), (200, 10, 10))
    r = recipe(image_id=image_id(image), extra={"box": [0, 0, 64, 64]})
    data = png_bytes(image, r)
    assert read_recipe(data) == r
    reopened = Image.open(io.BytesIO(data))
    assert "Steps: 20, Sampler: Euler a, CFG scale: 5, Seed: 7" in reopened.info["parameters"]


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
