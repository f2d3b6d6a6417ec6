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

# The same block types at toy widths, for smoke runs of the benchmarks on a CPU (seconds, not minutes).
TINY = dict(
    sd15=dict(block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32, attention_head_dim=4,
              norm_num_groups=16, sample_size=8, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
              up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")),
    sdxl=dict(block_out_channels=(32, 64), layers_per_block=1, transformer_layers_per_block=(1, 2),
              attention_head_dim=(2, 4), cross_attention_dim=64, norm_num_groups=16, sample_size=8,
              down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
              up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
              addition_time_embed_dim=8, projection_class_embeddings_input_dim=32 + 6 * 8),
    vae=dict(block_out_channels=(16, 16, 32, 32), layers_per_block=1, norm_num_groups=16, sample_size=64),
    clip=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, projection_dim=32),
)


def _text(config: dict, vocab: int, projection: bool = False):
    cfg = CLIPTextConfig(vocab_size=vocab, bos_token_id=0, eos_token_id=1, pad_token_id=1, **config)
    return CLIPTextModelWithProjection(cfg) if projection else CLIPTextModel(cfg)


@torch.no_grad()
def random_pipeline(family: str = "sd15", dtype: torch.dtype = torch.float32, device: str = "cpu", tiny: bool = False):
    """An SD 1.5 or SDXL pipeline with random weights, built directly on `device`, in inference mode like a
    loaded one. `tiny`: the same block types at toy widths (smoke runs)."""
    torch.manual_seed(0)
    tokenizer = build_tokenizer(max_tokens=77)  # same window as CLIP's; ids cover what the prompts use
    scheduler = EulerAncestralDiscreteScheduler(**SCHEDULER)  # numpy inside: built outside the device context
    sd15_unet, sdxl_unet, vae = SD15_UNET, SDXL_UNET, VAE
    clip_l, clip_bigg = CLIP_L, CLIP_BIGG
    if tiny:
        sd15_unet, sdxl_unet = SD15_UNET | TINY["sd15"], SDXL_UNET | TINY["sdxl"]
        vae, clip_l, clip_bigg = VAE | TINY["vae"], CLIP_L | TINY["clip"], CLIP_BIGG | TINY["clip"]
    with torch.device(device):
        if family == "sd15":
            pipe = StableDiffusionPipeline(
                vae=AutoencoderKL(**vae, scaling_factor=0.18215),
                text_encoder=_text(clip_l, len(tokenizer)),
                tokenizer=tokenizer,
                unet=UNet2DConditionModel(**sd15_unet),
                scheduler=scheduler,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        elif family == "sdxl":
            pipe = StableDiffusionXLPipeline(
                vae=AutoencoderKL(**vae, scaling_factor=0.13025, force_upcast=True),
                text_encoder=_text(clip_l, len(tokenizer)),
                text_encoder_2=_text(clip_bigg, len(tokenizer), projection=True),
                tokenizer=tokenizer,
                tokenizer_2=tokenizer,
                unet=UNet2DConditionModel(**sdxl_unet),
                scheduler=scheduler,
            )
        else:
            raise ValueError(family)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()  # as from_pretrained leaves them (dropout off; CUDA graphs need it)
    return pipe.to(dtype=dtype)
