"""Full-size Stable Diffusion architectures with random weights, for memory and speed benchmarks.

Cost does not depend on trained weights, so these stand in for the real checkpoints where none can be
downloaded. The configs are the published ones (SD 1.5: CLIP ViT-L/14 text encoder, 860 M-parameter
U-Net; SDXL: two text encoders, 2.6 B-parameter U-Net).
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKL,
    EulerAncestralDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from shapeworld.tokenizer import build_tokenizer

SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    cross_attention_dim=768,
    attention_head_dim=8,
)
SDXL_UNET = dict(
    sample_size=128,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280),
    layers_per_block=2,
    transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20),
    cross_attention_dim=2048,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)
VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    sample_size=512,
)
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
CLIP_BIGG = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
                 max_position_embeddings=77, hidden_act="gelu", projection_dim=1280)
SCHEDULER = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)


def _text(config: dict, vocab: int, projection: bool = False):
    cfg = CLIPTextConfig(vocab_size=vocab, bos_token_id=0, eos_token_id=1, pad_token_id=1, **config)
    return CLIPTextModelWithProjection(cfg) if projection else CLIPTextModel(cfg)


@torch.no_grad()
def random_pipeline(family: str = "sd15", dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """An SD 1.5 or SDXL pipeline with random weights, built directly on `device`."""
    torch.manual_seed(0)
    tokenizer = build_tokenizer(max_tokens=77)  # same window as CLIP's; ids cover what the prompts use
    scheduler = EulerAncestralDiscreteScheduler(**SCHEDULER)  # numpy inside: built outside the device context
    with torch.device(device):
        if family == "sd15":
            pipe = StableDiffusionPipeline(
                vae=AutoencoderKL(**VAE, scaling_factor=0.18215),
                text_encoder=_text(CLIP_L, len(tokenizer)),
                tokenizer=tokenizer,
                unet=UNet2DConditionModel(**SD15_UNET),
                scheduler=scheduler,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        elif family == "sdxl":
            pipe = StableDiffusionXLPipeline(
                vae=AutoencoderKL(**VAE, scaling_factor=0.13025, force_upcast=True),
                text_encoder=_text(CLIP_L, len(tokenizer)),
                text_encoder_2=_text(CLIP_BIGG, len(tokenizer), projection=True),
                tokenizer=tokenizer,
                tokenizer_2=tokenizer,
                unet=UNet2DConditionModel(**SDXL_UNET),
                scheduler=scheduler,
            )
        else:
            raise ValueError(family)
    return pipe.to(dtype=dtype)
