"""LoRAs: found by name on the server, refused before queueing when they cannot apply, applied for one run
and gone after it (no leak into the next run, another view of the U-Net or the base weights), in both the
PEFT and the kohya layout, recorded in the recipe."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines import Registry, Txt2ImgRequest, ValidationError, read_recipe
from pipelines.front.loras import as_loras, split_tags
from tests.conftest import TINY, as_array, build_lora, build_tiny_pipeline, make_studio, tiny_preset

REQUEST = dict(model=TINY, prompt="a red circle", seed=7, steps=3, width=64, height=64, scheduler="Euler a")
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


@pytest.fixture(scope="module")
def lora_model(tmp_path_factory) -> Path:
    """The tiny model with its own loras/ (PEFT layout `style`, `grain`), plus `kohya-style`: `style` converted
    to the kohya layout by diffusers' own converter, in a server folder."""
    from diffusers.utils.state_dict_utils import convert_state_dict_to_kohya
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("lora-model")
    model = build_tiny_pipeline(root / "model")
    style = build_lora(model, model / "loras", "style", seed=1)
    build_lora(model, model / "loras", "grain", seed=2)
    (root / "server").mkdir()
    save_file(convert_state_dict_to_kohya(load_file(style)), root / "server" / "kohya-style.safetensors")
    xl = build_tiny_pipeline_xl_lora(root)
    shutil.copy(xl, root / "server" / "for-xl.safetensors")
    return model


def build_tiny_pipeline_xl_lora(root: Path) -> Path:
    """A LoRA made for the tiny SDXL model (64-wide text features, where the tiny SD model has 32)."""
    from diffusers import StableDiffusionXLPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from tests.conftest import build_tiny_xl_pipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(build_tiny_xl_pipeline(root / "xl"), dtype=torch.float32)
    pipe.unet.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=TARGETS))
    StableDiffusionXLPipeline.save_lora_weights(root / "xl-loras", unet_lora_layers=get_peft_model_state_dict(pipe.unet), weight_name="xl.safetensors")
    return root / "xl-loras" / "xl.safetensors"


def registry(model: Path) -> Registry:
    server = model.parent / "server"
    return Registry(Registry().presets + (tiny_preset(model),), (("mine", str(server)),))


@pytest.fixture(scope="module")
def lora_studio(lora_model):
    return make_studio(registry(lora_model))


def pixels(studio, **kw) -> np.ndarray:
    return as_array(studio.submit(Txt2ImgRequest(**{**REQUEST, **kw})).result().images[0])


def test_loras_are_found_by_name_in_the_model_folder_and_the_server_folders(lora_studio):
    assert lora_studio.loras(TINY) == ("grain", "kohya-style", "style")  # not for-xl: another architecture
    assert "outline" not in lora_studio.loras(TINY)
    # The picker's names only: no path ever reaches the browser.
    assert all("/" not in name for name in lora_studio.loras(TINY))


@pytest.mark.parametrize(
    ("loras", "prompt", "message"),
    [
        ([["nowhere", 1]], "a red circle", "no LoRA named 'nowhere'"),
        ([["for-xl", 1]], "a red circle", "made for another kind of model"),
        ([["style", 2.5]], "a red circle", "outside −2…2"),
        ([["style", float("nan")]], "a red circle", "outside −2…2"),
        ([["style", "heavy"]], "a red circle", "not a number"),
        ((), "a red circle <lora:style:-3>", "outside −2…2"),
        ((), "a red circle <lora:style:x>", "the weight must be a number"),
        ((), "a red circle <lora:../../etc/passwd:1>", "no LoRA named"),
    ],
)
def test_refusals_come_before_anything_is_queued(lora_studio, loras, prompt, message):
    with pytest.raises(ValidationError, match=message):
        lora_studio.submit(Txt2ImgRequest(**{**REQUEST, "loras": loras, "prompt": prompt}))


def test_tags_leave_the_prompt_and_pickers_hand_over_pairs_in_any_shape():
    assert split_tags("a red circle <lora:style:0.8>, <lora:grain>") == ("a red circle", (("style", 0.8), ("grain", 1.0)))
    assert split_tags("<LORA:style:0.5:extra> a circle") == ("a circle", (("style", 0.5),))
    expected = (("style", 0.5), ("grain", 1.0))
    for given in ([["style", 0.5], ["grain", None]], {"style": 0.5, "grain": 1}, "style:0.5, grain",
                  {"data": [["style", "0.5"], ["grain", ""], ["", None]], "headers": ["LoRA", "weight"]}):
        assert as_loras("loras", given) == expected, given


def test_a_lora_changes_the_picture_and_nothing_of_it_outlives_the_run(lora_model, lora_studio):
    from pipelines.device.manager import module_bytes

    manager = lora_studio.runner.manager
    pipe = manager.pipeline(TINY, "txt2img")
    img2img = manager.pipeline(TINY, "img2img")
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    params = {n: p.data_ptr() for n, p in pipe.unet.named_parameters()}
    size = module_bytes(pipe)

    plain = pixels(lora_studio)
    styled = pixels(lora_studio, loras=[["style", 1.0]])
    assert np.abs(styled.astype(int) - plain).mean() > 1  # it does something
    after = pixels(lora_studio)
    fresh = pixels(make_studio(registry(lora_model)))  # a studio that never saw a LoRA
    assert (after == fresh).all() and (after == plain).all()

    # The shared U-Net is the one it was, weight for weight, bit for bit, in every view; no LoRA layer is left.
    assert img2img.unet is pipe.unet and module_bytes(pipe) == size
    assert {n: p.data_ptr() for n, p in pipe.unet.named_parameters()} == params
    assert all(torch.equal(v, before[k]) for k, v in pipe.unet.state_dict().items()) and set(pipe.unet.state_dict()) == set(before)
    assert not any("lora" in type(m).__name__.lower() for m in pipe.unet.modules())
    assert not getattr(pipe.unet, "peft_config", None)


def test_weights_the_kohya_layout_the_prompt_tag_and_several_at_once(lora_studio):
    plain = pixels(lora_studio)
    style = pixels(lora_studio, loras=[["style", 1.0]])
    # Weight 0 is no LoRA at all; the kohya file (converted by diffusers) draws what the PEFT one draws.
    assert (pixels(lora_studio, loras=[["style", 0]]) == plain).all()
    assert np.abs(pixels(lora_studio, loras=[["kohya-style", 1.0]]).astype(int) - style).max() <= 1
    # A tag in the prompt is the picker's LoRA, and leaves the text the encoder reads.
    assert (pixels(lora_studio, prompt="a red circle <lora:style:1>") == style).all()
    half = pixels(lora_studio, loras=[["style", 0.5]])
    both = pixels(lora_studio, loras=[["style", 1.0], ["grain", 1.0]])
    for other in (plain, style):
        assert np.abs(half.astype(int) - other).mean() > 0.5
        assert np.abs(both.astype(int) - other).mean() > 0.5


def test_the_recipe_records_the_loras_and_restores_them(lora_studio, tmp_path):
    result = lora_studio.submit(Txt2ImgRequest(**{**REQUEST, "prompt": "a red circle <lora:style:0.8>"})).result()
    recipe = result.recipes[0]
    assert recipe.prompt == "a red circle" and recipe.loras == [["style", 0.8]]
    assert recipe.a1111_parameters().splitlines()[0] == "a red circle <lora:style:0.8>"
    path = tmp_path / "out.png"
    result.images[0].save(path, pnginfo=recipe.png_info())
    values = read_recipe(str(path)).values()
    assert values["loras"] == [["style", 0.8]] and values["prompt"] == "a red circle"
    again = lora_studio.submit(Txt2ImgRequest(**{**REQUEST, **{k: values[k] for k in ("prompt", "loras")}})).result()
    assert (as_array(again.images[0]) == as_array(result.images[0])).all()


def test_with_the_gpu_speed_ups_a_lora_adapts_the_split_projections_and_they_are_fused_again_after(lora_model):
    """Fused QKV projections would bypass a LoRA on the separate ones, and a captured graph would replay the
    U-Net without it: the change splits them and drops graphs for the run, and fuses again after."""
    from pipelines.device.acceleration import GraphedForward, capture_by_recomputing, describe, fuse_qkv, graphed

    unfused = make_studio(registry(lora_model))
    expected_plain, expected_style = pixels(unfused), pixels(unfused, loras=[["style", 1.0]])
    studio = make_studio(registry(lora_model))
    manager = studio.runner.manager
    pipe = manager.pipeline(TINY, "txt2img")
    fuse_qkv(pipe.unet)
    GraphedForward.install(pipe.unet, capture=capture_by_recomputing, device_types=("cpu",))
    manager.gpu_speed = "graphs"  # as on CUDA: the changes keep the speed-ups
    assert np.abs(pixels(studio).astype(int) - expected_plain).max() <= 1
    assert graphed(pipe.unet).graphs
    styled = pixels(studio, loras=[["style", 1.0]])
    assert np.abs(styled.astype(int) - expected_style).max() <= 1  # the LoRA reached q, k and v too
    assert describe(pipe)["fused_qkv"] and not graphed(pipe.unet).graphs  # fused again; no graph with the LoRA
    assert np.abs(pixels(studio).astype(int) - expected_plain).max() <= 1


OUTLINE = Path(__file__).resolve().parent.parent / "assets" / "shapes-model" / "loras" / "outline.safetensors"


@pytest.mark.skipif(not OUTLINE.is_file(), reason="assets/shapes-model/loras/outline.safetensors is not there yet (trained on a GPU)")
def test_the_shipped_outline_lora_draws_outlines_at_one_and_filled_shapes_at_zero(studio):
    from shapeworld.judge import fill

    prompt = "a large blue square on a white background"
    fills = {}
    for weight in (0.0, 1.0):
        request = Txt2ImgRequest(model="shapes", prompt=prompt, loras=[["outline", weight]], seed=100, num_images=8,
                                 width=64, height=64)
        fills[weight] = [fill(as_array(image)) for image in studio.submit(request).result().images]
    # Filled at weight 0 (about 1), outlined at weight 1 (well under one half), image by image for most seeds.
    assert np.median(fills[0.0]) > 0.8 and np.median(fills[1.0]) < 0.7, fills  # an edge one latent cell wide
    assert sum(f1 < f0 for f0, f1 in zip(fills[0.0], fills[1.0])) >= 7, fills
