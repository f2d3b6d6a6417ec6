"""Sketch: a rough coloured drawing becomes the layout of the picture the prompt describes."""

import io

import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image, ImageDraw

from pipelines import Limits, SketchRequest, ValidationError
from shapeworld.judge import judge
from tests.conftest import TINY, as_array
from tests.helpers import bomb_png

LIMITS = Limits(
    min_size=64, max_size=128, native_size=64, family="shapes", max_pixels=512 * 512, models=("shapes", TINY)
)
PROMPT = "a blue triangle on a white background"


def blob(where=(0.25, 0.25), colour=(35, 80, 230), size=512) -> Image.Image:
    """A rough scribbled blob, as a person draws one with a few strokes of a thick brush."""
    canvas = Image.new("RGB", (size, size), "white")
    pen = ImageDraw.Draw(canvas)
    x, y = where[0] * size, where[1] * size
    for dy in np.linspace(-0.08, 0.08, 5) * size:
        pen.line([(x - 0.09 * size, y + dy), (x + 0.09 * size, y + dy * 0.6)], fill=colour, width=int(0.06 * size))
    return canvas


def png_file(tmp_path, name: str, image: Image.Image) -> str:
    path = tmp_path / name
    image.save(path)
    return str(path)


def test_a_drawing_is_fitted_to_the_model_and_kept_as_the_layout():
    request = SketchRequest(model="shapes", prompt=PROMPT, sketch=blob(), steps=20).validated(LIMITS)
    assert request.sketch.size == (64, 64) and request.strength == 0.6
    assert judge(as_array(request.sketch)).position == "top left"


@pytest.mark.parametrize(
    "sketch,message",
    [
        (Image.new("RGB", (512, 512), "white"), "sketch: the drawing is empty"),
        (Image.new("RGBA", (256, 256), (0, 0, 0, 0)), "sketch: the drawing is empty"),
        (Image.new("RGB", (1024, 1024), "white"), "sketch: 1024×1024 is larger than this server accepts"),
        (None, "sketch: the drawing is empty"),
        ("not a picture", "sketch: the upload did not arrive"),
    ],
    ids=["white", "transparent", "too-large", "missing", "no-file"],
)
def test_bad_drawings_are_refused_by_name(sketch, message):
    with pytest.raises(ValidationError, match=message):
        SketchRequest(model="shapes", prompt=PROMPT, sketch=sketch).validated(LIMITS)


def test_a_file_that_is_not_an_image_is_refused_by_name(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not a picture at all" * 10)
    with pytest.raises(ValidationError, match="sketch: the file is not an image, or it is damaged"):
        SketchRequest(model="shapes", prompt=PROMPT, sketch=str(junk)).validated(LIMITS)


def test_a_transparent_drawing_lands_on_white_paper(tmp_path):
    strokes = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    ImageDraw.Draw(strokes).ellipse((80, 80, 120, 120), fill=(225, 30, 30, 255))
    request = SketchRequest(model="shapes", prompt=PROMPT, sketch=png_file(tmp_path, "s.png", strokes)).validated(
        LIMITS
    )
    reading = judge(as_array(request.sketch))
    assert (reading.background, reading.colour, reading.position) == ("white", "red", "bottom right")


@pytest.mark.parametrize("strength", [0.0, 0.04, 1.01])
def test_how_freely_is_refused_outside_its_range(strength):
    with pytest.raises(ValidationError, match="strength"):
        SketchRequest(model="shapes", prompt=PROMPT, sketch=blob(), strength=strength).validated(LIMITS)


def test_a_low_how_freely_with_few_steps_still_draws_one_step(tiny_studio):
    """int(10 × 0.05) is 0: as in every image task the schedule is lengthened, nothing is refused."""
    drawing = blob(size=64)
    request = SketchRequest(model=TINY, prompt=PROMPT, sketch=drawing, strength=0.05, steps=10, seed=1, num_images=1)
    result = tiny_studio.submit(request).result()
    assert as_array(result.images[0]).tobytes() != as_array(drawing).tobytes()
    assert result.recipes[0].steps == 10 and result.recipes[0].settings["strength"] == 0.05


def test_pixels_equal_a_direct_image_to_image_call(tiny_studio, tiny_model_dir):
    import torch
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionImg2ImgPipeline

    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(tiny_model_dir, dtype=torch.float32)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    drawing = blob(size=256)
    direct = pipe(
        [PROMPT] * 2,
        negative_prompt=[""] * 2,
        image=drawing.resize((64, 64), Image.Resampling.LANCZOS),
        strength=0.6,
        num_inference_steps=5,
        guidance_scale=5.0,
        generator=[torch.Generator("cpu").manual_seed(s) for s in (3, 4)],
    ).images
    result = tiny_studio.submit(
        SketchRequest(model=TINY, prompt=PROMPT, sketch=drawing, steps=5, seed=3, num_images=2, parent="feedface")
    ).result()
    assert [as_array(a).tobytes() for a in result.images] == [as_array(b).tobytes() for b in direct]
    recipe = result.recipes[1]
    assert (recipe.task, recipe.seed, recipe.parent, recipe.settings) == ("sketch", 4, "feedface", {"strength": 0.6})


@pytest.mark.slow
@pytest.mark.parametrize(
    "where,colour,prompt,expected",
    [
        ((0.25, 0.25), (35, 80, 230), PROMPT, ("top left", "blue", "triangle")),
        ((0.75, 0.75), (225, 30, 30), "a red square on a white background", ("bottom right", "red", "square")),
    ],
    ids=["blue-triangle-top-left", "red-square-bottom-right"],
)
def test_a_blob_in_a_corner_becomes_the_asked_shape_in_that_corner(studio, where, colour, prompt, expected):
    """The embedded model does not follow position words; the drawing places the shape. At the default
    "how freely" (0.6) every seed keeps the place and the colour and takes the asked shape."""
    request = SketchRequest(model="shapes", prompt=prompt, sketch=blob(where, colour), seed=0, num_images=4)
    readings = [judge(as_array(image)) for image in studio.submit(request).result().images]
    assert [(r.position, r.colour, r.shape) for r in readings] == [expected] * 4


def test_the_sketch_endpoint_takes_named_parameters_and_refuses_bad_drawings(client, tmp_path):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/sketch"]
    parameters = {p["parameter_name"] for p in named["parameters"]}
    every = {"sketch": handle_file(png_file(tmp_path, "blob.png", blob())), "prompt": PROMPT, "negative_prompt": ""}
    every |= {"seed": 1, "strength": 0.6, "steps": 12, "guidance_scale": 5, "num_images": 1, "scheduler": "Euler a"}
    _, made = client.predict(prompt=PROMPT, seed=1, steps=2, model="shapes", api_name="/txt2img")
    parent = made[0]["image_id"]  # one of the caller's own images: any other id is refused
    every |= {"model": "shapes", "parent": parent, "loras": {"headers": ["LoRA", "weight"], "data": []}, "styles": []}
    gallery, recipes = client.predict(**every, api_name="/sketch")
    assert parameters == set(every)
    assert len(gallery) == 1 and recipes[0]["task"] == "sketch" and recipes[0]["parent"] == parent
    # A 512² drawing comes back at 256² through the embedded model's stage (its ×4 at most), and says so.
    assert recipes[0]["settings"] == {"strength": 0.6, "upscaled": 4}
    assert Image.open(gallery[0]["image"]).size == (256, 256)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a picture" * 20)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, "PNG")
    (tmp_path / "white.png").write_bytes(buffer.getvalue())
    (tmp_path / "huge.png").write_bytes(bomb_png(20000, 20000))
    bad = (
        (junk, "sketch: the file is not an image"),
        (tmp_path / "white.png", "sketch: the drawing is empty"),
        (tmp_path / "huge.png", "sketch: too large to open"),
    )
    for sketch, message in bad:
        with pytest.raises(Exception, match=message):
            client.predict(sketch=handle_file(str(sketch)), prompt=PROMPT, api_name="/sketch")
    with pytest.raises(Exception, match="strength"):
        client.predict(
            sketch=handle_file(png_file(tmp_path, "b.png", blob())), prompt=PROMPT, strength=7, api_name="/sketch"
        )
