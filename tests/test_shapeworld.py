"""The shape world: generator, tokenizer and judge (which the semantic tests trust)."""

import collections

import numpy as np

from shapeworld.evaluate import agreement, Case
from shapeworld.judge import judge
from shapeworld.tokenizer import build_tokenizer
from shapeworld.world import VOCABULARY, caption_for, caption_text, draw, make_dataset, sample_scene


def test_dataset_is_deterministic_by_seed():
    a, ca = make_dataset(20, seed=3)
    b, cb = make_dataset(20, seed=3)
    c, _ = make_dataset(20, seed=4)
    assert (a == b).all() and ca == cb and (a != c).any()
    assert a.shape == (20, 64, 64, 3) and a.dtype == np.uint8


def test_captions_follow_the_grammar():
    assert caption_text("orange", "circle") == "an orange circle"
    assert caption_text("red", "square", "large", "top left", "gray") == "a large red square at the top left on a gray background"
    assert caption_text("blue", "triangle", position="center") == "a blue triangle in the center"


def test_every_caption_word_is_one_token_and_unknown_words_still_encode():
    tokenizer = build_tokenizer()
    for word in VOCABULARY:
        assert len(tokenizer(word).input_ids) == 3, word  # start, word, end
    ids = tokenizer("a zebra café 🦓").input_ids
    assert tokenizer.unk_token_id not in ids[1:-1] and len(ids) > 5
    assert build_tokenizer().get_vocab() == tokenizer.get_vocab()  # rebuilding gives the same ids


def test_judge_agrees_with_the_generator_on_its_own_drawings():
    rng = np.random.default_rng(7)
    hits = collections.defaultdict(list)
    for _ in range(600):
        scene = sample_scene(rng)
        case = Case(scene, caption_for(scene))
        for attribute, ok in agreement(judge(draw(scene)), case).items():
            hits[attribute].append(ok)
    scores = {a: float(np.mean(v)) for a, v in hits.items()}
    assert all(s >= 0.99 for s in scores.values()), scores
    assert set(scores) == {"colour", "shape", "size", "position", "background"}


def test_judge_reads_an_empty_canvas_as_no_shape():
    reading = judge(np.full((64, 64, 3), 255, np.uint8))
    assert reading.shape == "none" and reading.background == "white"


def test_growing_a_unet_keeps_every_trained_weight_and_adds_a_quadrant_level():
    import torch

    from shapeworld.train import build_unet, grow_unet

    torch.manual_seed(0)
    old = build_unet((32, 64), 1, 32)
    new = grow_unet(old)
    assert tuple(new.config.block_out_channels) == (32, 64, 64)
    grown = new.state_dict()
    for key, value in old.state_dict().items():
        if key.startswith("up_blocks."):
            index, rest = key.removeprefix("up_blocks.").split(".", 1)
            key = f"up_blocks.{int(index) + 1}.{rest}"
        assert torch.equal(grown[key], value), key
    fresh = [k for k in grown if k.startswith(("down_blocks.2.resnets", "up_blocks.0."))]
    assert fresh  # the new level exists, with weights of its own
    sample = new(torch.randn(1, 4, 16, 16), 10, torch.randn(1, 5, 32)).sample
    assert sample.shape == (1, 4, 16, 16)


def test_fine_tuning_named_unet_parts_leaves_the_rest_untouched(tmp_path):
    import torch

    from shapeworld.train import build_text_encoder, build_unet, build_vae, parse_args, train_unet
    from shapeworld.tokenizer import build_tokenizer

    args = parse_args(["unet", "--out", str(tmp_path), "--device", "cpu", "--images", "16", "--batch", "4",
                       "--steps", "3", "--workers", "1", "--unet-parts", "mid_block", "--timesteps", "900", "1000"])
    torch.manual_seed(0)
    vae = build_vae()
    unet, text_encoder = build_unet((32, 32), 1, 32), build_text_encoder(len(build_tokenizer()), 32)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    train_unet(args, vae, log=lambda line: None, text_encoder=text_encoder, unet=unet)
    after = unet.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("mid_block") for k in changed)


def test_growing_without_a_start_model_is_refused_clearly(capsys):
    import pytest

    from shapeworld.train import parse_args

    with pytest.raises(SystemExit):
        parse_args(["grow", "--out", "x"])
    assert "needs --start" in capsys.readouterr().err
