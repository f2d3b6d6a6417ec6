"""The embedded model follows captions (fixed seeds, thresholds with margin below the benchmark)."""

import numpy as np
import pytest

from pipelines import InpaintRequest, Txt2ImgRequest
from shapeworld.evaluate import evaluation_cases, inpaint_cases, scene_cases, score, score_inpaint, score_scenes
from shapeworld.judge import judge
from tests.conftest import as_array

pytestmark = pytest.mark.slow


def studio_generator(studio, guidance=5.0):
    def generate(captions, seeds):
        images = []
        for caption, seed in zip(captions, seeds):
            req = Txt2ImgRequest(model="shapes", prompt=caption, seed=seed, guidance_scale=guidance, width=64, height=64)
            images.append(as_array(studio.txt2img(req).result().images[0]))
        return images

    return generate


def test_captions_are_followed(studio):
    scores = score(studio_generator(studio), evaluation_cases(10, seed=5), seeds=[0])
    assert scores["colour"] >= 0.85, scores
    assert scores["shape"] >= 0.8, scores
    assert scores["background"] >= 0.85, scores
    assert scores.get("size", 1.0) >= 0.75, scores
    assert scores["position"] >= 0.8, scores  # v1 put shapes where the noise did (about 20 %)


def test_two_figure_scenes_are_drawn(studio):
    # Every figure of "a … and a …" with its colour, shape and place.
    assert score_scenes(studio_generator(studio), scene_cases(8, seed=3), seeds=[0]) >= 0.6


def test_guidance_is_applied_and_the_caption_still_followed(studio):
    """The embedded model follows a one-figure caption without guidance too (at 1 and at 7 its readings are
    near perfect: 0.95–1.0 on 8 cases, measured), so "7 beats 1" is no claim to test. What a person relies
    on is checked instead: guidance changes the picture of the same seed, and the caption is still drawn."""
    prompt = "a large green triangle on a black background"
    low, high = (batch(studio, prompt, guidance, seeds=8) for guidance in (1.0, 7.0))
    assert all(np.abs(a.astype(int) - b).mean() > 1 for a, b in zip(low, high))
    readings = [judge(image) for image in high]
    assert sum((r.colour, r.shape, r.background) == ("green", "triangle", "black") for r in readings) >= 7, readings


def batch(studio, prompt: str, guidance: float, seeds: int) -> list[np.ndarray]:
    request = Txt2ImgRequest(model="shapes", prompt=prompt, seed=0, num_images=seeds, guidance_scale=guidance,
                             width=64, height=64)
    return [as_array(image) for image in studio.submit(request).result().images]


def test_inpainted_region_takes_the_asked_colour(studio):
    image = np.full((64, 64, 3), 255, np.uint8)
    image[2:14, 50:62] = (30, 170, 60)  # a green square, top right, clear of the feathered mask
    mask = np.zeros((64, 64), np.uint8)
    mask[20:56, 8:44] = 255
    from PIL import Image

    req = InpaintRequest(
        model="shapes", prompt="a red circle on a white background", image=Image.fromarray(image),
        mask=Image.fromarray(mask), seed=0, num_images=3, strength=0.85, only_masked=True, padding=4,
    )
    result = studio.inpaint(req).result()
    reds = 0
    for out in result.images:
        region = as_array(out).copy()
        region[mask == 0] = 255  # judge the repainted region alone
        reds += judge(region).colour == "red"
        assert (as_array(out)[2:14, 50:62] == image[2:14, 50:62]).all()  # the green square is untouched
    assert reds >= 2


def test_inpainting_adds_the_asked_figure(studio):
    """The Inpaint tab on the embedded model (its own inpainting U-Net) paints the asked figure into the mask."""
    from PIL import Image

    def inpaint(images, masks, prompts, seeds):
        return [
            as_array(studio.inpaint(InpaintRequest(
                model="shapes", prompt=prompt, image=Image.fromarray(image), mask=Image.fromarray(mask),
                seed=seed, strength=1.0, mask_blur=0,
            )).result().images[0])
            for image, mask, prompt, seed in zip(images, masks, prompts, seeds)
        ]

    scores = score_inpaint(inpaint, inpaint_cases(10, seed=7), seeds=[0])
    assert scores["both"] >= 0.7, scores
