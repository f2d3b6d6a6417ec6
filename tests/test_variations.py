"""Variations: the dial keeps outputs as close as asked; the adapter never leaks into other tabs."""

import numpy as np
import pytest
from PIL import Image

from pipelines import Txt2ImgRequest, ValidationError, VariationsRequest
from pipelines.tasks.variations import DIAL, strength_for
from shapeworld.judge import judge
from tests.conftest import TINY, as_array


@pytest.fixture(scope="module")
def source(studio):
    req = Txt2ImgRequest(model="shapes", prompt="a large blue square on a white background", seed=4, width=64, height=64)
    return studio.txt2img(req).result().images[0]


def distance(a, b):
    return float(np.abs(as_array(a).astype(float) - as_array(b)).mean())


def vary(studio, image, similarity, seeds=(0,), **kw):
    images = []
    for seed in seeds:
        req = VariationsRequest(model="shapes", image=image, similarity=similarity, seed=seed, num_images=2, **kw)
        images += studio.variations(req).result().images
    return images


def test_the_dial_maps_monotonically_for_every_family():
    for family in DIAL:
        values = [strength_for(s, family) for s in np.linspace(0, 1, 21)]
        assert all(a >= b for a, b in zip(values, values[1:])), family


@pytest.mark.slow
def test_very_close_keeps_colour_and_shape_and_loose_wanders(studio, source):
    close = vary(studio, source, 1.0, seeds=(0, 1))
    reading = judge(as_array(source))
    assert all(judge(as_array(v)).colour == reading.colour for v in close)
    assert sum(judge(as_array(v)).shape == reading.shape for v in close) >= 3
    loose = vary(studio, source, 0.0, seeds=(0, 1))
    assert np.mean([distance(source, v) for v in loose]) > np.mean([distance(source, v) for v in close])


@pytest.mark.slow
def test_the_default_similarity_keeps_colour_and_shape_in_most_variations(studio):
    """bench/dial.py's sources: six large shapes of six colours, two variations each."""
    from shapeworld.world import COLOURS, SHAPES, draw, scene_for

    rng = np.random.default_rng(0)
    sources = [draw(scene_for(rng, list(COLOURS)[i % 6], SHAPES[i % 3], "large", "center", "white")) for i in range(6)]
    default = VariationsRequest.__dataclass_fields__["similarity"].default
    kept = []
    for source in sources:
        reading = judge(source)
        for out in vary(studio, Image.fromarray(source), default):
            variation = judge(as_array(out))
            kept.append(variation.colour == reading.colour and variation.shape == reading.shape)
    assert np.mean(kept) >= 0.6, kept


def test_the_default_similarity_is_a_subject_keeping_strength_on_the_stable_diffusion_families():
    # The usual image-to-image rule: up to about half the noise the composition and subject stay.
    default = VariationsRequest.__dataclass_fields__["similarity"].default
    assert all(strength_for(default, family) <= 0.55 for family in ("sd15", "sd21", "sdxl"))


@pytest.mark.slow
def test_distance_grows_along_the_dial(studio, source):
    dial = [1.0, 0.6, 0.3, 0.0]
    means = [np.mean([distance(source, v) for v in vary(studio, source, s, seeds=(0, 1, 2))]) for s in dial]
    assert all(a < b for a, b in zip(means, means[1:])), means


def test_recipes_keep_the_lineage(tiny_studio):
    image = Image.new("RGB", (64, 64), (10, 200, 30))
    req = VariationsRequest(model=TINY, image=image, similarity=0.5, seed=1, steps=4, num_images=2, parent="abc123")
    result = tiny_studio.variations(req).result()
    assert [r.parent for r in result.recipes] == ["abc123", "abc123"]
    assert [r.seed for r in result.recipes] == [1, 2]
    assert result.recipes[0].settings == {"similarity": 0.5, "mode": "image", "strength": strength_for(0.5, "sd15")}


def test_pixels_equal_a_direct_image_to_image_call(tiny_studio, tiny_model_dir):
    """The image is fitted to the model's size and noised as far as the dial says; nothing else."""
    import torch
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionImg2ImgPipeline

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(tiny_model_dir, dtype=torch.float32)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    fitted = image.resize((64, 48), Image.Resampling.LANCZOS)  # the longer side at the model's 64
    direct = pipe(["a red circle"], negative_prompt=[""], image=fitted, strength=strength_for(0.5, "sd15"),
                  num_inference_steps=4, guidance_scale=5.0, generator=[torch.Generator("cpu").manual_seed(7)]).images[0]
    req = VariationsRequest(model=TINY, image=image, prompt="a red circle", similarity=0.5, seed=7, steps=4)
    assert as_array(tiny_studio.submit(req).result().images[0]).tobytes() == as_array(direct).tobytes()


@pytest.mark.parametrize("steps,similarity", [(1, 0.7), (2, 0.9)])
def test_few_steps_still_run_one_denoising_step(tiny_studio, steps, similarity):
    """int(steps × strength) is 0 here: diffusers alone would fail; one step runs instead."""
    assert int(steps * strength_for(similarity, "sd15")) == 0
    image = Image.new("RGB", (64, 64), (10, 200, 30))
    req = VariationsRequest(model=TINY, image=image, similarity=similarity, seed=1, steps=steps)
    result = tiny_studio.variations(req).result()
    assert as_array(result.images[0]).tobytes() != as_array(image).tobytes()
    assert result.recipes[0].steps == steps


def test_the_schedule_is_lengthened_only_where_no_step_would_run():
    from pipelines.device.sampling import schedule_length

    for strength in np.linspace(0.01, 1.0, 100):
        for steps in (1, 2, 3, 4, 20):
            length = schedule_length(steps, float(strength))
            assert int(length * strength) >= 1
            assert length == steps or int((length - 1) * strength) == 0  # the shortest that runs a step


def test_embedding_mode_without_an_adapter_is_refused_before_queueing(tiny_studio):
    req = VariationsRequest(model=TINY, image=Image.new("RGB", (64, 64)), mode="embedding", seed=1, steps=2)
    with pytest.raises(ValidationError, match="mode: this model has no image-prompt adapter"):
        tiny_studio.submit(req)


def test_variations_validate_before_queueing(tiny_studio):
    with pytest.raises(ValidationError, match="similarity"):
        tiny_studio.variations(VariationsRequest(model=TINY, image=Image.new("RGB", (8, 8)), similarity=float("nan")))


def build_tiny_ip_adapter(unet, folder):
    """Random IP-Adapter weights shaped for `unet`, and a tiny CLIP image encoder, in the Hub layout."""
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32,
        patch_size=8, projection_dim=16))
    encoder.save_pretrained(folder / "models" / "image_encoder")
    dim = unet.config.cross_attention_dim
    weights = {
        "image_proj.proj.weight": torch.randn(dim * 4, 16) * 0.02,
        "image_proj.proj.bias": torch.zeros(dim * 4),
        "image_proj.norm.weight": torch.ones(dim),
        "image_proj.norm.bias": torch.zeros(dim),
    }
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        attention = unet.get_submodule(name.removesuffix(".processor"))
        for kind in ("to_k", "to_v"):
            weights[f"ip_adapter.{key_id}.{kind}_ip.weight"] = torch.randn_like(getattr(attention, kind).weight) * 0.5
        key_id += 2
    save_file(weights, folder / "models" / "ip-adapter.safetensors")
    return folder


def test_embedding_mode_runs_and_never_leaks_into_other_tabs(tiny_model_dir, tmp_path):
    import time

    from pipelines import InpaintRequest
    from pipelines.front.registry import IPAdapter
    from tests.conftest import make_studio, tiny_registry

    probe = make_studio(tiny_registry(tiny_model_dir))
    folder = build_tiny_ip_adapter(probe.runner.manager.pipeline(TINY, "txt2img").unet, tmp_path / "adapter")
    adapter = IPAdapter(str(folder), "models", "ip-adapter.safetensors", "models/image_encoder")
    studio = make_studio(tiny_registry(tiny_model_dir, ip_adapter=adapter))
    image = Image.new("RGB", (64, 64), (200, 30, 30))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    t2i = Txt2ImgRequest(model=TINY, prompt="a red circle", seed=3, steps=3, width=64, height=64)
    inp = InpaintRequest(model=TINY, prompt="a red circle", image=image, mask=mask, seed=3, steps=3)
    before = [as_array(studio.txt2img(t2i).result().images[0]), as_array(studio.inpaint(inp).result().images[0])]
    start = time.perf_counter()
    req = VariationsRequest(model=TINY, image=image, mode="embedding", similarity=0.5, seed=1, steps=3, num_images=2)
    result = studio.variations(req).result()
    print(f"embedding variations with adapter load and unload: {time.perf_counter() - start:.2f} s")
    assert len(result.images) == 2 and result.recipes[0].settings["mode"] == "embedding"
    image_mode = studio.variations(VariationsRequest(model=TINY, image=image, mode="image", similarity=0.5, seed=1, steps=3)).result()
    assert (as_array(image_mode.images[0]) != as_array(result.images[0])).any()  # the adapter did condition
    after = [as_array(studio.txt2img(t2i).result().images[0]), as_array(studio.inpaint(inp).result().images[0])]
    assert (before[0] == after[0]).all() and (before[1] == after[1]).all()
    base = studio.runner.manager.pipeline(TINY, "txt2img")
    assert base.unet.encoder_hid_proj is None
