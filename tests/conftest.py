"""Shared fixtures: the embedded model's studio, tiny random models saved at test time, a running app.

Everything is offline: the Hub is switched off before anything imports huggingface_hub.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("OMP_NUM_THREADS", "2")
# What an app started by a test keeps in the user's data folder (its signing key) goes to a folder of its own.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="atelier-test-data-")

from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from pipelines import ModelPreset, Registry, Studio  # noqa: E402

TINY = "tiny"
TINY_XL = "tiny-xl"


TINY_UNET = dict(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1)


def tiny_parts():
    """What both tiny pipelines share, made in a fixed order after seeding: the embedded model's
    tokenizer, a tiny autoencoder that scales by 8 as Stable Diffusion's does (64² ↔ 8²×4; at 512² one
    that scales by 4 took 46 s an image on two cores), and the settings of a tiny CLIP text encoder."""
    import torch
    from diffusers import AutoencoderKL

    from shapeworld.tokenizer import build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer()
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 16, 32, 32),
        latent_channels=4,
        norm_num_groups=16,
        layers_per_block=1,
    )
    text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length, bos_token_id=0,
                eos_token_id=1, pad_token_id=1)
    return tokenizer, vae, text


def tiny_unet(**changes):
    """The tiny Stable Diffusion U-Net, cross-attention at its full size; `changes` to its settings."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        **{**TINY_UNET, **changes},
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=16,
    )


def build_tiny_pipeline(folder: Path) -> Path:
    """A Stable Diffusion pipeline with random weights, a few hundred kB, saved in diffusers format."""
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer, vae, text = tiny_parts()
    unet = tiny_unet()  # before the text encoder: the order random weights are drawn in
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(CLIPTextConfig(**text)),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerAncestralDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_xl_pipeline(folder: Path) -> Path:
    """A Stable Diffusion XL pipeline (two text encoders, size and crop conditioning) with random weights."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer, vae, text = tiny_parts()
    unet = UNet2DConditionModel(
        **TINY_UNET,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # six size/crop numbers × 8, plus the pooled text
        cross_attention_dim=64,  # both encoders' hidden states side by side
        norm_num_groups=16,
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(CLIPTextConfig(**text)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**text, projection_dim=32)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_x4_upscaler(folder: Path) -> Path:
    """Stability's ×4 upscaler's architecture with random weights: a U-Net over the latents beside the
    small picture itself (4 + 3 channels), its noise level as a class label, an autoencoder that scales by 4."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer, _, text = tiny_parts()
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16),
        down_block_types=("DownEncoderBlock2D",) * 3,
        mid_block_add_attention=False,  # attention over every latent pixel costs seconds at 128²
        up_block_types=("UpDecoderBlock2D",) * 3,
        norm_num_groups=8,
        scaling_factor=0.08333,  # Stability's
    )
    unet = UNet2DConditionModel(
        # The latents are as large as the picture's tile (128²): attention only at a quarter of that.
        sample_size=32,
        in_channels=7,
        out_channels=4,
        block_out_channels=(16, 16, 32),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=16,
        num_class_embeds=1000,
    )
    pipe = StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=CLIPTextModel(CLIPTextConfig(**text)),
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=DDPMScheduler(),
        scheduler=DDIMScheduler(prediction_type="v_prediction"),
        max_noise_level=350,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_tiny_x2_upscaler(folder: Path) -> Path:
    """Stability's ×2 latent upscaler's architecture with random weights: a U-Net over the latents beside the
    picture's own latents (4 + 4 channels, one output channel more that the pipeline drops), conditioned on
    the pooled text through `timestep_cond` (128 noise-level numbers + the text's 32)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionLatentUpscalePipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer, vae, text = tiny_parts()
    pipe = StableDiffusionLatentUpscalePipeline(
        vae=vae,
        text_encoder=CLIPTextModel(CLIPTextConfig(**text)),
        tokenizer=tokenizer,
        unet=tiny_unet(in_channels=8, out_channels=5, time_cond_proj_dim=128 + 32),
        scheduler=EulerDiscreteScheduler(prediction_type="sample"),
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def build_lora(model: Path, folder: Path, name: str, seed: int, targets=("to_q", "to_k", "to_v", "to_out.0")) -> Path:
    """A LoRA with random, non-zero matrices on the model's attention (strong enough to change a picture of
    a few steps), saved as diffusers saves LoRAs: `folder/name.safetensors`."""
    import torch
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(model, dtype=torch.float32)
    torch.manual_seed(seed)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=list(targets)))
    with torch.no_grad():
        for n, p in pipe.unet.named_parameters():
            if "lora_B" in n:
                p.mul_(4)
    layers = get_peft_model_state_dict(pipe.unet)
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=layers, weight_name=f"{name}.safetensors")
    return folder / f"{name}.safetensors"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_xl_model_dir(tmp_path_factory) -> Path:
    return build_tiny_xl_pipeline(tmp_path_factory.mktemp("tiny-xl-model"))


def tiny_preset(folder: Path, **overrides) -> ModelPreset:
    preset = ModelPreset(
        name=TINY,
        label="Tiny random model",
        source=str(folder),
        family="sd15",
        width=64,
        height=64,
        steps=4,
        guidance=5.0,
        scheduler="Euler a",
        min_size=32,
        max_size=128,
        variant=None,
    )
    return replace(preset, **overrides)


def tiny_registry(folder: Path, **overrides) -> Registry:
    return Registry(Registry().presets + (tiny_preset(folder, **overrides),))


def make_studio(registry: Registry | None = None, **options) -> Studio:
    """A studio over this process's CPU, float32; `options` as for `local_studio`."""
    from pipelines.device.local import local_studio
    from pipelines.device.manager import PipelineManager

    return local_studio(PipelineManager(registry or Registry(), device="cpu", dtype="float32"), **options)


@pytest.fixture(scope="session")
def studio() -> Studio:
    """The embedded model on the CPU, shared by the tests that only read from it."""
    return make_studio()


@pytest.fixture(scope="session")
def tiny_studio(tiny_model_dir) -> Studio:
    return make_studio(tiny_registry(tiny_model_dir))


@pytest.fixture(scope="session")
def app_url(tmp_path_factory, tiny_model_dir):
    """The real app, started as `python app.py` on a free port: the embedded model first, and the tiny
    random model registered as a local folder (a second model to switch to, offline). Its own process, as
    a person runs it: a Gradio server in the test process polls for work every millisecond for the rest
    of the session and takes the GIL from every model test after it (1.30 → 1.46 s an image, measured)."""
    outputs = tmp_path_factory.mktemp("outputs")
    loras = tmp_path_factory.mktemp("loras")
    build_lora(Path(__file__).resolve().parent.parent / "assets" / "shapes-model", loras, "grain", seed=3)  # for the embedded model
    styles = tmp_path_factory.mktemp("styles") / "styles.json"
    flags = ["--outputs", str(outputs), "--queue-size", "32", "--model-dirs", f"{TINY}={tiny_model_dir}",
             "--lora-dirs", f"test={loras}", "--styles-file", str(styles)]
    with app_process(flags, tmp_path_factory.mktemp("app") / "app.log") as url:
        yield url


@contextlib.contextmanager
def app_process(flags: list[str], log: Path, timeout: float = 120, port: int | None = None):
    """`python app.py` with these flags on a free loopback port (or `port`), its output in `log`; yields its
    address once it says it is running, and stops it (SIGTERM, as a service manager does) afterwards."""
    import socket
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parent.parent
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    with open(log, "w") as out:
        app = subprocess.Popen([sys.executable, "app.py", "--no-open-browser", "--port", str(port), *flags],
                               cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while "Atelier is running at" not in log.read_text():
            assert app.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.terminate()
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Playwright, one per test module."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def white(size: int = 64) -> Image.Image:
    return Image.new("RGB", (size, size), (255, 255, 255))
