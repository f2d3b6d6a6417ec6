"""Weighted prompts in AUTOMATIC1111's syntax and prompts longer than the window, for every pipeline
family: parsed leniently, unweighted text untouched to the pixel, weight 1 the same as none, long and
BREAK text encoded in chunks, and on the embedded model the effects a person expects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines import MorphRequest, Txt2ImgRequest
from pipelines.device.weighting import BREAK, WeightedEncoder, chunked, parse
from tests.conftest import TINY, TINY_XL, as_array, make_studio, tiny_registry

REQUEST = dict(model=TINY, prompt="a red circle", seed=3, steps=3, width=64, height=64, scheduler="Euler a")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("a red circle", [("a red circle", 1.0)]),
        ("a (red) circle", [("a ", 1.0), ("red", 1.1), (" circle", 1.0)]),
        ("((red))", [("red", pytest.approx(1.21))]),
        ("[red]", [("red", pytest.approx(1 / 1.1))]),
        ("[[red]]", [("red", pytest.approx(1 / 1.21))]),
        ("(red:1.5) circle", [("red", 1.5), (" circle", 1.0)]),
        ("(red: .5 )", [("red", 0.5)]),
        ("(a (b:2) c)", [("a ", 1.1), ("b", pytest.approx(2.2)), (" c", 1.1)]),
        ("\\(red\\) \\[x\\] a\\\\b", [("(red) [x] a\\b", 1.0)]),
        ("a BREAK b", [("a", 1.0), ("BREAK", BREAK), ("b", 1.0)]),
        ("aBREAKb", [("aBREAKb", 1.0)]),  # only the word
        # Malformed: read leniently, never refused.
        ("(red:abc", [("red:abc", 1.1)]),
        ("red) x [y", [("red) x ", 1.0), ("y", pytest.approx(1 / 1.1))]),
        (":1.5) x", [(":1.5) x", 1.0)]),
        ("((", [("", 1.0)]),
        ("", [("", 1.0)]),
    ],
)
def test_prompts_parse_as_automatic1111_reads_them(text, fragments):
    assert parse(text) == fragments


def direct(pipe, prompt, negative="", seed=3, steps=3):
    """Plain diffusers, as Atelier drew before weighting existed."""
    out = pipe(prompt=[prompt], negative_prompt=[negative], num_inference_steps=steps, guidance_scale=5.0,
               generator=[torch.Generator("cpu").manual_seed(seed)], width=64, height=64)
    return as_array(out.images[0])


def pixels(studio, **kw) -> np.ndarray:
    return as_array(studio.submit(Txt2ImgRequest(**{**REQUEST, **kw})).result().images[0])


def test_unweighted_text_draws_exactly_todays_pixels_and_weight_one_is_no_weight(tiny_studio):
    pipe = tiny_studio.runner.manager.pipeline(TINY, "txt2img")
    plain = pixels(tiny_studio)
    assert (plain == direct(pipe, "a red circle")).all()
    for same in ("a (red:1) circle", "(a red circle:1)"):
        assert (pixels(tiny_studio, prompt=same) == plain).all(), same
    assert (pixels(tiny_studio, negative_prompt="(blue:1)") == pixels(tiny_studio, negative_prompt="blue")).all()
    assert "encode_prompt" not in vars(pipe)  # the class's own is back after every run


@pytest.mark.parametrize("text", ["a (red:1.6) circle", "a [red] circle", "a red BREAK circle"])
def test_weights_and_breaks_change_the_conditioning(tiny_studio, text):
    assert np.abs(pixels(tiny_studio, prompt=text).astype(int) - pixels(tiny_studio)).mean() > 0.2


def test_malformed_syntax_still_draws(tiny_studio):
    for text in ("a (red:abc circle", "red)) [[circle", "a \\( circle", "(((", "BREAK BREAK"):
        assert pixels(tiny_studio, prompt=text).shape == (64, 64, 3), text


def test_long_prompts_and_negative_prompts_are_read_to_their_end(tiny_studio):
    """The tiny model's window holds 30 words: what comes after the first 30 used to be ignored."""
    start = " ".join(["red"] * 34)
    assert np.abs(pixels(tiny_studio, prompt=start + " blue").astype(int) - pixels(tiny_studio, prompt=start + " green")).mean() > 0.2
    end = lambda word: pixels(tiny_studio, negative_prompt=" ".join(["square"] * 34) + " " + word)  # noqa: E731
    assert np.abs(end("blue").astype(int) - end("green")).mean() > 0.2


def test_chunks_cut_at_the_window_or_a_nearby_comma_and_every_text_of_a_run_has_as_many(tiny_studio):
    pipe = tiny_studio.runner.manager.pipeline(TINY, "txt2img")
    tokenizer = pipe.tokenizer  # a window of 32: 30 tokens a chunk
    words = ["red"] * 25 + [","] + ["blue"] * 10
    chunks = chunked(tokenizer, parse(" ".join(words)))
    assert [len(c.ids) for c in chunks] == [26, 10]  # cut after the comma, not in the middle of the run after it
    assert [len(c.ids) for c in chunked(tokenizer, parse(" ".join(["red"] * 70)))] == [30, 30, 10]
    encoder = WeightedEncoder(pipe, ("a red circle", " ".join(["red"] * 70)))
    short, _ = encoder.encode("a red circle")
    assert short.shape == (1, 3 * 32, 32)  # padded with empty chunks to the run's longest text
    own, _ = pipe.encode_prompt("a red circle", pipe.device, 1, False)
    assert torch.equal(short[:, :32], own)  # the first chunk of plain text is the pipeline's own encoding


def test_sdxl_reads_weights_with_both_encoders_and_weight_one_is_exact(tiny_xl_model_dir):
    studio = make_studio(tiny_registry(tiny_xl_model_dir, name=TINY_XL, family="sdxl", width=64, height=64))
    pipe = studio.runner.manager.pipeline(TINY_XL, "txt2img")
    request = {**REQUEST, "model": TINY_XL, "scheduler": "Euler"}
    plain = pixels(studio, **request)
    assert (pixels(studio, **{**request, "prompt": "a (red:1) circle"}) == plain).all()
    assert np.abs(pixels(studio, **{**request, "prompt": "a (red:1.8) circle"}).astype(int) - plain).mean() > 0.2
    encoder = WeightedEncoder(pipe, ("a red circle",))
    embeds, negative, pooled, negative_pooled = encoder.encode_prompt("a red circle", device=pipe.device, negative_prompt="")
    own = pipe.encode_prompt("a red circle", device=pipe.device, negative_prompt="")
    for mine, theirs in zip((embeds, negative, pooled, negative_pooled), own):
        assert torch.equal(mine, theirs)
    long = encoder.encode(" ".join(["red"] * 40))[0]
    assert long.shape == (1, 2 * 32, 64)  # both encoders side by side, two chunks


def test_a_morph_between_a_long_and_a_short_prompt_lines_their_chunks_up(tiny_studio):
    request = MorphRequest(model=TINY, prompt=" ".join(["red"] * 40), prompt_b="a blue square", seed=1, steps=2,
                           num_frames=3, width=64, height=64, even_pacing=False)
    assert len(tiny_studio.submit(request).result().images) == 3


# -- the embedded model: what weighting does to the picture -------------------------------------------------


def judged(studio, prompt: str, guidance: float, seeds: range) -> list:
    from shapeworld.judge import judge

    readings = []
    for first in seeds[::8]:  # eight images a request, the studio's limit
        request = Txt2ImgRequest(model="shapes", prompt=prompt, seed=first, num_images=min(8, seeds.stop - first),
                                 guidance_scale=guidance, width=64, height=64)
        readings += [judge(as_array(image)) for image in studio.submit(request).result().images]
    return readings


@pytest.mark.slow
def test_a_colour_weighted_down_to_0_2_becomes_rarer(studio):
    seeds = range(0, 8)  # measured: blue 8 of 8 plain, 3 of 8 at 0.2 (16 of 16 and 8 of 16 on twice the seeds)
    plain = sum(r.colour == "blue" for r in judged(studio, "a blue circle on a white background", 5.0, seeds))
    faint = sum(r.colour == "blue" for r in judged(studio, "a (blue:0.2) circle on a white background", 5.0, seeds))
    assert plain >= 7 and faint <= plain - 3, (plain, faint)


@pytest.mark.slow
def test_a_size_weighted_up_at_low_guidance_becomes_more_frequent(studio):
    """Without guidance the embedded model draws "large" 15 times in 24 when the word opens the prompt;
    weighted ×2 it draws it 18 times (measured on these seeds)."""
    seeds = range(0, 24)
    plain = sum(r.size == "large" for r in judged(studio, "large a red circle on a white background", 1.0, seeds))
    strong = sum(r.size == "large" for r in judged(studio, "(large:2) a red circle on a white background", 1.0, seeds))
    assert strong >= plain + 2, (plain, strong)
