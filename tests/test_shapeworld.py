"""The shape world: generator, tokenizer, judge (which the semantic tests trust) and training."""

import collections
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from shapeworld.evaluate import Case, agreement, inpaint_cases, masked_region, scene_agreement, scene_cases
from shapeworld.judge import judge, read_scene
from shapeworld.tokenizer import MAX_TOKENS, build_tokenizer
from shapeworld.world import (
    BACKGROUNDS,
    VOCABULARY,
    Scene,
    apart,
    caption_for,
    caption_text,
    draw,
    inpaint_example,
    make_dataset,
    sample_scene,
)


def test_dataset_is_deterministic_by_seed():
    a, ca = make_dataset(20, seed=3)
    b, cb = make_dataset(20, seed=3)
    c, _ = make_dataset(20, seed=4)
    assert (a == b).all() and ca == cb and (a != c).any()
    assert a.shape == (20, 64, 64, 3) and a.dtype == np.uint8


def test_one_figure_captions_keep_their_grammar_and_scenes_join_figures_with_and():
    assert caption_text("orange", "circle") == "an orange circle"
    assert caption_text("red", "square", "large", "top left", "gray") == "a large red square at the top left on a gray background"
    assert caption_text("blue", "triangle", position="center") == "a blue triangle in the center"
    rng = np.random.default_rng(0)
    scene = sample_scene(rng, figures=3)
    text = caption_for(scene).text  # without an rng everything is said, in the scene's order
    parts = text.split(" on a ")[0].split(" and ")
    assert len(parts) == 3 and text.endswith(f"on a {scene.background} background")
    for part, figure in zip(parts, scene.figures):
        assert figure.colour in part and figure.shape in part and figure.position.split()[-1] in part


def test_figures_of_a_scene_never_touch_and_sit_in_different_places():
    rng = np.random.default_rng(1)
    counts = collections.Counter()
    for _ in range(300):
        scene = sample_scene(rng)
        counts[len(scene.figures)] += 1
        assert apart(list(scene.figures))
        places = [f.position for f in scene.figures]
        assert len(scene.figures) == 1 or len(set(places)) == len(places)
    assert set(counts) == {1, 2, 3}


def test_every_caption_word_is_one_token_and_the_longest_caption_fits_the_window():
    tokenizer = build_tokenizer()
    for word in VOCABULARY:
        assert len(tokenizer(word).input_ids) == 3, word  # start, word, end
    ids = tokenizer("a zebra café 🦓").input_ids
    assert tokenizer.unk_token_id not in ids[1:-1] and len(ids) > 5
    assert build_tokenizer().get_vocab() == tokenizer.get_vocab()  # rebuilding gives the same ids
    longest = " and ".join(["a large purple triangle at the bottom right"] * 3) + " on a white background"
    assert len(tokenizer(longest).input_ids) <= MAX_TOKENS


def test_judge_agrees_with_the_generator_on_every_figure_of_its_own_scenes():
    rng = np.random.default_rng(7)
    hits = collections.defaultdict(list)
    for _ in range(600):
        scene = sample_scene(rng)
        reading = read_scene(draw(scene))
        hits["count"].append(len(reading.figures) == len(scene.figures))
        for figure in scene.figures:
            seen = min(reading.figures, key=lambda r: math.dist(r.centre, figure.centre))
            hits["colour"].append(seen.colour == figure.colour)
            hits["shape"].append(seen.shape == figure.shape)
            if figure.size != "medium":
                hits["size"].append(seen.size == figure.size)
            if figure.position:
                hits["position"].append(seen.position == figure.position)
        hits["background"].append(reading.background == scene.background)
    scores = {a: float(np.mean(v)) for a, v in hits.items()}
    assert all(s >= 0.99 for s in scores.values()), scores


def test_one_figure_cases_and_two_figure_scenes_score_perfectly_on_true_drawings():
    rng = np.random.default_rng(2)
    for _ in range(100):
        scene = sample_scene(rng, figures=1)
        assert all(agreement(judge(draw(scene)), Case(scene, caption_for(scene))).values())
    cases = scene_cases(60)
    assert all(scene_agreement(read_scene(draw(c.scene)), c) for c in cases)
    assert " and " in cases[0].caption.text and "small" not in cases[0].caption.text
    case = next(c for c in cases if c.scene.figures[0].colour != c.scene.figures[1].colour)
    a, b = case.scene.figures  # the same figures with their colours exchanged: a binding error
    swapped = Scene((replace(a, colour=b.colour), replace(b, colour=a.colour)), case.scene.background)
    assert not scene_agreement(read_scene(draw(swapped)), case)


def test_judge_reads_an_empty_canvas_as_no_figure():
    reading = judge(np.full((64, 64, 3), 255, np.uint8))
    assert reading.shape == "none" and reading.background == "white"
    assert read_scene(np.full((64, 64, 3), 0, np.uint8)).figures == ()


def test_inpainting_examples_mask_the_figure_they_name_and_leave_the_others_outside():
    rng = np.random.default_rng(3)
    named = 0
    for _ in range(200):
        image, mask, caption = inpaint_example(rng)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255} and mask.any()
        background = BACKGROUNDS[read_scene(image).background]
        region = np.where(mask[..., None] > 0, image, np.array(background, np.uint8))
        outside = np.where(mask[..., None] > 0, np.array(background, np.uint8), image)
        figures_in = read_scene(region).figures
        if caption and not caption.startswith("on a"):  # a figure is named: it is in the mask, whole
            colour, shape = caption.split(" on a ")[0].split()[-2:]
            assert [(f.colour, f.shape) for f in figures_in] == [(colour, shape)], caption
            named += 1
        else:  # an empty stretch: nothing in the mask
            assert figures_in == ()
        assert len(read_scene(outside).figures) == len(read_scene(image).figures) - len(figures_in)
    assert named > 150


def test_inpaint_cases_ask_for_a_figure_over_empty_background():
    for case in inpaint_cases(40):
        region = masked_region(case.image, case)
        assert judge(region).shape == "none"  # nothing there yet
        assert case.prompt.split()[-2:] == [case.colour, case.shape]


def test_tokens_drawn_with_the_data_are_the_tokenizer_s_own():
    from shapeworld.train import dataset

    images, tokens = dataset(30, seed=5, workers=1)
    _, captions = make_dataset(30, 5)
    assert images.shape == (30, 64, 64, 3) and tokens.shape == (30, MAX_TOKENS)
    expected = build_tokenizer()(captions, padding="max_length", max_length=MAX_TOKENS).input_ids
    assert tokens.tolist() == expected


def test_the_inpainting_unet_starts_out_as_the_text_to_image_one():
    import torch

    from shapeworld.train import build_unet, inpainting_unet

    torch.manual_seed(0)
    unet = build_unet((32, 32, 32, 32), 1, 32).eval()
    wide = inpainting_unet(unet).eval()
    assert wide.config.in_channels == 9
    x, cond = torch.randn(2, 4, 16, 16), torch.randn(2, 5, 32)
    extra = torch.randn(2, 5, 16, 16)  # mask and masked-image latents: ignored until trained
    with torch.no_grad():
        assert torch.allclose(wide(torch.cat([x, extra], 1), 500, cond).sample, unet(x, 500, cond).sample, atol=1e-5)


@pytest.mark.slow
def test_training_smoke_builds_trains_saves_reloads_and_evaluates(tmp_path):
    """Every stage of the GPU recipe, a few steps each on the CPU: what runs on a lent GPU must not
    fail there for a reason that shows here."""
    import torch
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file

    from shapeworld import evaluate, train

    vae = "assets/shapes-model/vae"
    tiny = ["--device", "cpu", "--workers", "1", "--steps", "2", "--batch", "4", "--channels", "32", "32", "32", "32",
            "--text-width", "32", "--text-layers", "1"]
    train.main(["data", "--vae", vae, "--out", str(tmp_path / "data"), "--images", "40", *tiny])
    train.main(["unet", "--vae", vae, "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"), *tiny])
    before = load_file(tmp_path / "m" / "text_encoder" / "model.safetensors")
    train.main(["inpaint", "--start", str(tmp_path / "m"), "--out", str(tmp_path / "m" / "inpainting"), "--images", "20", *tiny])
    # The inpainting variant holds only its own U-Net; the shared text encoder is left as it was.
    assert sorted(p.name for p in (tmp_path / "m" / "inpainting").iterdir() if p.is_dir()) == ["scheduler", "unet"]
    after = load_file(tmp_path / "m" / "text_encoder" / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)
    record = json.loads((tmp_path / "m" / "training.json").read_text())
    assert record["steps_run"] == 2 and record["channels"] == [32, 32, 32, 32]
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "m", dtype=torch.float32)
    assert list(pipe.unet.config.block_out_channels) == [32, 32, 32, 32] and pipe.unet.dtype == torch.float32
    # A style as a LoRA: one safetensors file that diffusers loads onto the same model.
    train.main(["lora", "--start", str(tmp_path / "m"), "--out", str(tmp_path / "m" / "loras" / "outline"), "--images", "20", *tiny])
    assert (tmp_path / "m" / "loras" / "outline.safetensors").is_file()
    pipe.load_lora_weights(tmp_path / "m" / "loras", weight_name="outline.safetensors", adapter_name="outline")
    assert pipe.get_active_adapters() == ["outline"]
    # The decoder stage sharpens the decoder alone: the encoder, so the U-Net's latent space, is kept.
    train.main(["decoder", "--vae", vae, "--out", str(tmp_path / "vae"), "--images", "20", *tiny])
    old, new = load_file(f"{vae}/diffusion_pytorch_model.safetensors"), load_file(tmp_path / "vae" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(old[k], new[k]) for k in old if k.startswith(("encoder.", "quant_conv.")))
    assert any(not torch.equal(old[k], new[k]) for k in old if k.startswith("decoder."))
    evaluate.main([str(tmp_path / "m"), "--inpaint", str(tmp_path / "m" / "inpainting"), "--captions", "2", "--scenes", "2",
                   "--seeds", "1", "--device", "cpu", "--json", str(tmp_path / "scores.json")])
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert set(scores) >= {"single", "two_figures", "inpaint_add"} and scores["inpaint_add"]["outside_unchanged"] == 1.0


def test_stages_that_need_a_start_are_refused_clearly(capsys):
    from shapeworld.train import parse_args

    with pytest.raises(SystemExit):
        parse_args(["inpaint", "--out", "x"])
    assert "needs --start" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["unet", "--out", "x"])
    assert "needs --vae" in capsys.readouterr().err


def test_the_critic_s_term_is_weighed_to_the_reconstruction_s_gradient_at_the_last_layer():
    """VQGAN's adaptive weight: whatever the two losses' scales, the adversarial gradient at the U-Net's
    last layer is made the reconstruction's size (times --adversarial)."""
    import torch

    from shapeworld.upscale import balanced, critic

    last = torch.nn.Parameter(torch.ones(3))
    weight = balanced((2 * last).sum(), (8 * last).sum(), last)
    assert weight.item() == pytest.approx(0.25, rel=1e-3) and not weight.requires_grad
    verdict = critic()(torch.zeros(2, 6, 64, 64))
    assert verdict.shape == (2, 1, 8, 8)  # a verdict for each patch, not one for the picture


def test_the_stage_trains_with_the_critic_through_its_sampler_and_saves_a_loadable_stage(tmp_path):
    """In a process of its own: training sets torch's threads and denormal handling for the whole process."""
    import subprocess
    import sys
    from pathlib import Path

    from diffusers import UNet2DConditionModel

    flags = ["--out", str(tmp_path), "--channels", "16", "32", "--crop", "32", "--batch", "4", "--scenes", "2",
             "--steps", "3", "--adversarial", "1", "--critic-warmup", "1", "--sampled-steps", "3", "--eval-scenes", "0",
             "--threads", "1"]
    trained = subprocess.run([sys.executable, "-m", "shapeworld.upscale", *flags], cwd=Path(__file__).resolve().parent.parent,
                             capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-3000:]
    log = (tmp_path / "training.log").read_text()
    assert "critic" in log and "done: 3 steps" in log
    assert UNet2DConditionModel.from_pretrained(tmp_path / "unet").config.block_out_channels == [16, 32]
    record = json.loads((tmp_path / "training.json").read_text())
    assert (record["adversarial"], record["sampled_steps"], record["sampler"], record["steps_run"]) == (1.0, 3, "Euler a", 3)


@pytest.mark.parametrize(("sampler", "steps"), [("Euler a", 4), ("DPM++ 2M", 2)])
def test_the_sampler_the_stage_learns_through_is_the_pipeline_s(sampler, steps):
    """`--sampled-steps` trains on the residual `sampled` makes; it must be the one the Upscale task makes,
    the same noise in (Euler a's fresh noise each step too), or the stage would learn a sampler nobody runs."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor
    from PIL import Image
    from transformers import CLIPTextModel

    from pipelines.device.pixel_upscale import upsampled
    from pipelines.device.sampling import fresh_scheduler
    from shapeworld.tokenizer import build_tokenizer
    from shapeworld.upscale import build_unet, pipeline, sampled

    torch.manual_seed(0)
    text_encoder = CLIPTextModel.from_pretrained("assets/shapes-model/text_encoder", dtype=torch.float32)
    pipe = pipeline(build_unet((16, 32), text_encoder.config.hidden_size, 2).eval(), text_encoder, build_tokenizer())
    pipe.scheduler = fresh_scheduler(sampler, pipe.scheduler.config)
    small = Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    seen = {}
    pipe("a red circle", small, num_inference_steps=steps, noise_level=20, generator=torch.Generator().manual_seed(7),
         callback_on_step_end=lambda p, i, t, kw: seen.update(latents=kw["latents"]) or kw)

    generator, level = torch.Generator().manual_seed(7), torch.tensor([20])  # drawn in the pipeline's order
    large = upsampled(pipe.image_processor.preprocess(small), 4)
    condition = pipe.pack(pipe.low_res_scheduler.add_noise(large, randn_tensor(large.shape, generator=generator), level))
    start = pipe.pack(randn_tensor(large.shape, generator=generator))
    text, _ = pipe.encode_prompt(["a red circle"], "cpu", 1, False)
    with torch.no_grad():
        ours = sampled(pipe.unet, start, condition, text, level, steps, sampler, generator)
    assert torch.allclose(ours, seen["latents"], atol=1e-5)
    assert not torch.allclose(ours, start, atol=1e-2)  # it did sample
