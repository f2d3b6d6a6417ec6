"""Train the embedded model: autoencoder, then text encoder and U-Net together, then an inpainting U-Net.

    python -m shapeworld.train --out assets/shapes-model                        # everything, end to end
    python -m shapeworld.train vae --out runs/vae                                 # the autoencoder alone
    python -m shapeworld.train decoder --vae runs/vae --out runs/vae2             # its decoder, sharper on scenes
    python -m shapeworld.train data --vae runs/vae --out runs/data                # scenes drawn and encoded once
    python -m shapeworld.train unet --vae runs/vae --data runs/data --out runs/model   # text to image
    python -m shapeworld.train inpaint --start runs/model --out runs/model/inpainting  # 9-channel variant
    python -m shapeworld.train lora --start runs/model --out runs/model/loras/outline  # a style as a LoRA

The recipe is latent diffusion as Stable Diffusion does it, scaled down: v-prediction with a
zero-terminal-SNR noise schedule (Lin et al. 2023), without which the background colour cannot be steered.
Position is what the first recipe never learned, and the causes were measured
(bench/results/position-experiments.txt); this one removes them:
- the loss is plain v-prediction MSE by default: Min-SNR weighting (`--min-snr-gamma`) gives the noisiest
  steps, where the layout is decided, a weight near zero;
- the U-Net goes down to 2×2, where every cell is a quadrant and the convolutions' zero padding tells it
  which one; `--high-noise-p` can add samples from the noisiest tenth of the schedule;
- scenes of several figures make position words necessary (which figure is where), so the text encoder,
  trained with the U-Net, can no longer erase them; positions are said more often (`--position-p`).
The inpainting stage starts from the trained U-Net with five extra input channels (mask, masked image)
initialised to zero, so it begins as the text-to-image model and learns where from the mask; the text
encoder and autoencoder stay frozen because the inpainting variant shares them with the base model.
Everything is seeded; `training.json` in the output folder records the arguments, steps and wall time.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    EulerAncestralDiscreteScheduler,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from diffusers.training_utils import EMAModel, compute_snr
from transformers import CLIPTextConfig, CLIPTextModel

from .tokenizer import MAX_TOKENS, build_tokenizer
from .world import FIGURE_COUNT_P, STYLES, make_dataset, make_inpaint_dataset

NOISE_SCHEDULE = dict(
    num_train_timesteps=1000,
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=True,
)
# Sampling with a zero-terminal-SNR schedule must start at the last timestep: "trailing" spacing.
SAMPLING_SCHEDULE = dict(NOISE_SCHEDULE, timestep_spacing="trailing", steps_offset=1)
INPAINT_CHANNELS = 9  # noisy latents (4) + mask (1) + masked-image latents (4): SD 1.5 inpainting's layout


def build_vae() -> AutoencoderKL:
    """64×64×3 ↔ 16×16×4: two downsamplings, the factor that keeps U-Net steps cheap on a CPU."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 64, 128),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=64,
    )


def build_text_encoder(vocab_size: int, width: int, layers: int = 4) -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=width,
            intermediate_size=width * 2,
            num_hidden_layers=layers,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            projection_dim=width,
        )
    )


def build_unet(channels: tuple[int, ...], layers: int, text_width: int, in_channels: int = 4) -> UNet2DConditionModel:
    """Cross-attention at every resolution, 16×16 included; four levels reach 2×2, one cell a quadrant."""
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * len(channels),
        up_block_types=("CrossAttnUpBlock2D",) * len(channels),
        block_out_channels=channels,
        layers_per_block=layers,
        cross_attention_dim=text_width,
        attention_head_dim=8,
        norm_num_groups=32,
    )


def inpainting_unet(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """`unet` with the mask and masked-image channels added to its first convolution, their weights zero:
    it starts out drawing exactly what the text-to-image U-Net draws."""
    config = dict(unet.config, in_channels=INPAINT_CHANNELS)
    wide = UNet2DConditionModel.from_config(config)
    state = unet.state_dict()
    weight = state["conv_in.weight"]
    state["conv_in.weight"] = torch.cat([weight, weight.new_zeros(weight.shape[0], INPAINT_CHANNELS - weight.shape[1], *weight.shape[2:])], 1)
    wide.load_state_dict(state)
    return wide.to(unet.device, unet.dtype)


# -- data ---------------------------------------------------------------------------------------------


def tokenize(captions: list[str]) -> np.ndarray:
    """Token ids, padded to the text encoder's window (N × MAX_TOKENS)."""
    return build_tokenizer()(captions, padding="max_length", max_length=MAX_TOKENS, return_tensors="np").input_ids.astype(np.int32)


def _dataset_chunk(args: tuple) -> tuple:
    """One chunk of examples, tokenized where drawn: the workers share that cost too."""
    kind, n, seed, options = args
    if kind == "inpaint":
        images, masks, captions = make_inpaint_dataset(n, seed, **options)
        return images, masks, tokenize(captions)
    images, captions = make_dataset(n, seed, **options)
    return images, tokenize(captions)


def _drawn(kind: str, n: int, seed: int, workers: int, **options) -> list[tuple]:
    """`n` examples drawn in chunks of 5000 (chunk i seeded `seed + i`): the same data on any core count."""
    chunks = [(kind, min(5000, n - start), seed + i, options) for i, start in enumerate(range(0, n, 5000))]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_dataset_chunk, chunks))


def dataset(n: int, seed: int, workers: int, **options) -> tuple[np.ndarray, np.ndarray]:
    """(images N×64×64×3, caption tokens N×MAX_TOKENS) of `n` scenes."""
    parts = _drawn("scenes", n, seed, workers, **options)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(2))


def inpaint_dataset(n: int, seed: int, workers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, masks N×64×64 uint8, caption tokens) of `n` inpainting examples."""
    parts = _drawn("inpaint", n, seed, workers)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def to_tensor(images: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def _autocast(device: str):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda"))


@torch.no_grad()
def encode_images(vae: AutoencoderKL, images: np.ndarray | torch.Tensor, device: str) -> torch.Tensor:
    """Scaled latent means; `images` as uint8 N×H×W×3 or as a tensor already in [-1, 1]."""
    out = []
    for start in range(0, len(images), 1024):
        chunk = images[start : start + 1024]
        pixels = chunk.to(device) if isinstance(chunk, torch.Tensor) else to_tensor(chunk, device)
        with _autocast(device):
            mean = vae.encode(pixels).latent_dist.mean
        out.append(mean.float() * vae.config.scaling_factor)
    return torch.cat(out)


def scene_data(args: argparse.Namespace, vae: AutoencoderKL) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and caption tokens for the U-Net: read from `--data` when given, else drawn and encoded."""
    if args.data:
        saved = torch.load(args.data / "latents.pt", map_location=args.device)
        return saved["latents"].float(), saved["tokens"]
    images, tokens = dataset(
        args.images, args.seed, args.workers, position_anywhere_p=args.anywhere_p, keep_p=args.keep_p,
        position_p=args.position_p, count_p=tuple(args.count_p),
    )
    return encode_images(vae, images, args.device), torch.from_numpy(tokens).to(args.device)


def train_vae(args: argparse.Namespace, log) -> AutoencoderKL:
    torch.manual_seed(args.seed)
    images, _ = dataset(args.vae_images, args.seed + 10_000, args.workers)
    data = to_tensor(images, args.device)
    vae = build_vae().to(args.device)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr)
    sched = torch.optim.lr_scheduler.LambdaLR(  # short warm-up, then cosine decay
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / args.vae_steps))
    )
    gen = torch.Generator(args.device).manual_seed(args.seed)
    start = time.time()
    for step in range(args.vae_steps):
        batch = data[torch.randint(len(data), (args.vae_batch,), device=args.device, generator=gen)]
        with _autocast(args.device):
            posterior = vae.encode(batch).latent_dist
            recon = vae.decode(posterior.sample(generator=gen)).sample
        loss = F.l1_loss(recon.float(), batch) + 1e-6 * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0 or step == args.vae_steps - 1:
            psnr = -10 * math.log10(F.mse_loss(recon.float().clamp(-1, 1), batch).item() / 4)
            log(f"vae step {step} loss {loss.item():.4f} psnr {psnr:.1f} dB ({time.time() - start:.0f} s)")
    vae.eval()
    # Scale latents to unit variance, as Stable Diffusion's 0.18215 does for its own autoencoder.
    with torch.no_grad(), _autocast(args.device):
        latents = vae.encode(data[:2048]).latent_dist.mean.float()
    vae.register_to_config(scaling_factor=float(1 / latents.std()))
    return vae


def train_decoder(args: argparse.Namespace, log) -> AutoencoderKL:
    """Fine-tune a trained autoencoder's decoder on scenes, its encoder frozen: the latent space the U-Net
    learned stays exactly as it was, while pictures of several figures decode sharper."""
    torch.manual_seed(args.seed)
    vae = AutoencoderKL.from_pretrained(args.vae, dtype=torch.float32).to(args.device)
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    images, _ = dataset(args.images, args.seed + 30_000, args.workers)
    held_out, _ = dataset(256, args.seed + 40_000, 1)
    pixels, check = to_tensor(images, args.device), to_tensor(held_out, args.device)
    with torch.no_grad():
        latents = torch.cat([vae.encode(pixels[i : i + 256]).latent_dist.mean for i in range(0, len(pixels), 256)])
        check_latents = vae.encode(check).latent_dist.mean

    def psnr() -> float:
        with torch.no_grad(), _autocast(args.device):
            decoded = vae.decode(check_latents).sample.float().clamp(-1, 1)
        return -10 * math.log10(F.mse_loss(decoded, check).item() / 4)

    learning = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
    opt = torch.optim.AdamW(learning, lr=args.lr)
    gen = torch.Generator(args.device).manual_seed(args.seed)
    log(f"decoder: held-out PSNR {psnr():.2f} dB before")
    start, step, saved = time.time(), 0, time.time()
    while step < args.steps and time.time() - start < args.max_minutes * 60:
        pick = torch.randint(len(latents), (args.batch,), device=args.device, generator=gen)
        with _autocast(args.device):
            decoded = vae.decode(latents[pick]).sample.float()
        loss = F.l1_loss(decoded, pixels[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if time.time() - saved > args.save_minutes * 60:
            log(f"decoder step {step}: held-out PSNR {psnr():.2f} dB ({time.time() - start:.0f} s); checkpoint")
            copy.deepcopy(vae).cpu().half().save_pretrained(args.out)
            saved = time.time()
    args.steps_run = step
    log(f"decoder: {step} steps, held-out PSNR {psnr():.2f} dB after")
    return vae


# -- the denoising loop, shared by text to image and inpainting ----------------------------------------


def _half(module):
    return copy.deepcopy(module).cpu().half().eval()


def export(vae, text_encoder, unet, tokenizer) -> StableDiffusionPipeline:
    """The shipped form, in half precision: half the download; the pipelines upcast on load where asked."""
    return StableDiffusionPipeline(
        vae=_half(vae), text_encoder=_half(text_encoder), tokenizer=tokenizer, unet=_half(unet),
        scheduler=EulerAncestralDiscreteScheduler(**SAMPLING_SCHEDULE),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def denoise(args, log, unet, text_encoder, sample, train_text: bool, save) -> None:
    """Train `unet` (and the text encoder if `train_text`) on batches from `sample(gen)` →
    (x0 latents, caption tokens, extra input channels or None); `save()` writes the EMA weights' export."""
    noise_scheduler = DDPMScheduler(**NOISE_SCHEDULE)
    cuda = args.device.startswith("cuda")
    learning = [p for p in unet.parameters() if p.requires_grad]
    groups = [{"params": learning}]
    if train_text:
        groups.append({"params": list(text_encoder.parameters()), "lr": args.text_lr or args.lr})
    params = [p for g in groups for p in g["params"]]
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.01, fused=cuda)
    budget = args.max_minutes * 60

    def lr_factor(step: int, elapsed: float) -> float:
        """Linear warm-up, then cosine decay to a tenth over whichever ends first: steps or minutes."""
        progress = min(1.0, max(step / args.steps, elapsed / budget if math.isfinite(budget) else 0.0))
        return min(1.0, (step + 1) / args.warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))

    # An average of the learning weights is what gets saved (frozen ones need none).
    ema = EMAModel(params, decay=args.ema, use_ema_warmup=True, foreach=True)

    def ema_save() -> None:
        ema.store(params)
        ema.copy_to(params)
        save()
        ema.restore(params)

    forward = unet
    if args.compile:
        forward = torch.compile(unet)
    gen = torch.Generator(args.device).manual_seed(args.seed)
    empty = torch.from_numpy(tokenize([""])).to(args.device)  # the unconditional caption, for guidance
    start, step, saved = time.time(), 0, time.time()
    while step < args.steps and time.time() - start < budget:
        for group, base in zip(opt.param_groups, [args.lr, args.text_lr or args.lr]):
            group["lr"] = base * lr_factor(step, time.time() - start)
        x0, tokens, extra = sample(gen)
        batch = len(x0)
        drop = torch.rand(batch, device=args.device, generator=gen) < args.caption_dropout
        tokens = torch.where(drop[:, None], empty, tokens)
        noise = torch.randn(x0.shape, device=args.device, generator=gen)
        t = torch.randint(0, 1000, (batch,), device=args.device, generator=gen)
        if args.high_noise_p > 0:  # extra weight on the noisiest tenth, where the layout is decided
            noisiest = torch.randint(900, 1000, (batch,), device=args.device, generator=gen)
            t = torch.where(torch.rand(batch, device=args.device, generator=gen) < args.high_noise_p, noisiest, t)
        with _autocast(args.device):
            with torch.set_grad_enabled(train_text):
                cond = text_encoder(tokens).last_hidden_state
            noisy = noise_scheduler.add_noise(x0, noise, t)
            model_in = noisy if extra is None else torch.cat([noisy, extra], 1)
            try:
                pred = forward(model_in, t, cond).sample.float()
            except Exception as e:  # a compiler that fails here costs the run nothing: go on eagerly
                if forward is unet:
                    raise
                log(f"compiled U-Net failed ({type(e).__name__}: {str(e)[:200]}); continuing without compile")
                forward = unet
                pred = forward(model_in, t, cond).sample.float()
        target = noise_scheduler.get_velocity(x0, noise, t)
        weight = torch.ones_like(t, dtype=torch.float32)
        if args.min_snr_gamma > 0:  # Min-SNR-γ for v-prediction: min(SNR, γ) / (SNR + 1)
            snr = compute_snr(noise_scheduler, t)
            weight = torch.clamp(snr, max=args.min_snr_gamma) / (snr + 1)
        loss = (F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3)) * weight).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.step(params)
        if step % 250 == 0:
            log(f"step {step} loss {loss.item():.4f} lr {opt.param_groups[0]['lr']:.2e} ({time.time() - start:.0f} s)")
        if time.time() - saved > args.save_minutes * 60:  # a checkpoint to judge while training goes on
            ema_save()
            log(f"checkpoint at step {step}")
            saved = time.time()
        step += 1
    args.steps_run = step
    args.train_minutes = round((time.time() - start) / 60, 2)
    log(f"done: {step} steps in {args.train_minutes} min")
    ema_save()


def train_unet(
    args: argparse.Namespace,
    vae: AutoencoderKL,
    log,
    text_encoder: CLIPTextModel | None = None,
    unet: UNet2DConditionModel | None = None,
) -> None:
    """Train the U-Net and text encoder together, from scratch or from the given ones; the export of
    the EMA weights goes to `args.out`."""
    torch.manual_seed(args.seed)
    tokenizer = build_tokenizer()
    latents, tokens = scene_data(args, vae)
    text_encoder = (text_encoder or build_text_encoder(len(tokenizer), args.text_width, args.text_layers)).to(args.device).train()
    unet = (unet or build_unet(tuple(args.channels), args.layers, args.text_width)).to(args.device).train()
    log(f"U-Net {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M parameters, {len(latents)} examples")

    def sample(gen):
        pick = torch.randint(len(latents), (args.batch,), device=args.device, generator=gen)
        return latents[pick], tokens[pick], None

    def save():
        export(vae, text_encoder, unet, tokenizer).save_pretrained(args.out, safe_serialization=True)

    denoise(args, log, unet, text_encoder, sample, train_text=True, save=save)


def latent_mask(masks: np.ndarray, device: str) -> torch.Tensor:
    """Masks at latent size as diffusers' inpainting pipeline makes them: binarised at one half, then
    nearest-neighbour resized to the latent grid."""
    mask = torch.from_numpy(masks).to(device).float().div(255).unsqueeze(1)
    mask = (mask >= 0.5).float()
    return F.interpolate(mask, size=(mask.shape[-2] // 4, mask.shape[-1] // 4))


def save_inpainting(folder: Path, pipe: StableDiffusionPipeline, unet: UNet2DConditionModel) -> None:
    """Write the inpainting variant as a diffusers folder that holds only its own U-Net and scheduler:
    Atelier loads it with the base model's autoencoder and text encoder (registry `inpaint_source`)."""
    StableDiffusionInpaintPipeline(
        vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer, unet=_half(unet),
        scheduler=EulerAncestralDiscreteScheduler(**SAMPLING_SCHEDULE),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(folder, safe_serialization=True)
    for shared in ("vae", "text_encoder", "tokenizer"):
        shutil.rmtree(folder / shared)


def train_inpaint(args: argparse.Namespace, log) -> None:
    """Fine-tune a 9-channel copy of a trained model's U-Net on scenes with masked regions."""
    torch.manual_seed(args.seed)
    base = StableDiffusionPipeline.from_pretrained(args.start, dtype=torch.float32)
    vae = base.vae.to(args.device).eval()
    text_encoder = base.text_encoder.to(args.device).eval().requires_grad_(False)
    unet = inpainting_unet(base.unet).to(args.device).train()
    images, masks, tokens = inpaint_dataset(args.images, args.seed + 20_000, args.workers)
    tokens = torch.from_numpy(tokens).to(args.device)
    pixels = to_tensor(images, "cpu")
    keep = torch.from_numpy(masks < 128).unsqueeze(1)  # diffusers blanks the masked pixels to 0 (mid-gray)
    latents = encode_images(vae, images, args.device)
    masked = encode_images(vae, pixels * keep, args.device)
    small_masks = latent_mask(masks, args.device)
    del images, pixels
    log(f"inpainting U-Net from {args.start}: {len(latents)} examples")

    def sample(gen):
        pick = torch.randint(len(latents), (args.batch,), device=args.device, generator=gen)
        return latents[pick], tokens[pick], torch.cat([small_masks[pick], masked[pick]], 1)

    denoise(args, log, unet, text_encoder, sample, train_text=False, save=lambda: save_inpainting(args.out, base, unet))


LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]


def train_lora(args: argparse.Namespace, log) -> None:
    """A LoRA on a trained model's U-Net, learning a drawing style (`--style`) for the same captions:
    the base weights stay frozen; the file is written in diffusers' LoRA layout, named after `--out`."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(args.seed)
    base = StableDiffusionPipeline.from_pretrained(args.start, dtype=torch.float32)
    vae = base.vae.to(args.device).eval()
    text_encoder = base.text_encoder.to(args.device).eval().requires_grad_(False)
    unet = base.unet.to(args.device).requires_grad_(False)
    unet.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.rank, init_lora_weights="gaussian", target_modules=LORA_TARGETS))
    unet.train()
    images, tokens = dataset(args.images, args.seed + 50_000, args.workers, style=args.style)
    latents, tokens = encode_images(vae, images, args.device), torch.from_numpy(tokens).to(args.device)
    del images
    log(f"LoRA '{args.out.name}' ({args.style}) rank {args.rank} on {args.start}: "
        f"{sum(p.numel() for p in unet.parameters() if p.requires_grad) / 1e3:.0f} k parameters, {len(latents)} examples")

    def sample(gen):
        pick = torch.randint(len(latents), (args.batch,), device=args.device, generator=gen)
        return latents[pick], tokens[pick], None

    def save():
        # PEFT's own layout, which diffusers' load_lora_weights reads back exactly (tested).
        StableDiffusionPipeline.save_lora_weights(
            args.out.parent, unet_lora_layers=get_peft_model_state_dict(unet), weight_name=f"{args.out.name}.safetensors"
        )

    denoise(args, log, unet, text_encoder, sample, train_text=False, save=save)


def write_data(args: argparse.Namespace, vae: AutoencoderKL, log) -> None:
    start = time.time()
    latents, tokens = scene_data(args, vae)
    torch.save({"latents": latents.half().cpu(), "tokens": tokens.cpu()}, args.out / "latents.pt")
    log(f"{len(latents)} examples drawn and encoded in {time.time() - start:.0f} s")


# -- command line ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", nargs="?", choices=["all", "vae", "decoder", "data", "unet", "inpaint", "lora"], default="all")
    p.add_argument("--out", type=Path, required=True, help="output folder (diffusers format)")
    p.add_argument("--vae", type=Path, help="stages 'decoder', 'data' and 'unet': a trained autoencoder folder")
    p.add_argument("--data", type=Path, help="stage 'unet': a folder written by stage 'data'")
    p.add_argument("--start", type=Path, help="stages 'inpaint' and 'lora': the trained text-to-image model folder; "
                   "stage 'unet': go on training that model's U-Net and text encoder")
    p.add_argument("--style", choices=STYLES, default="outline", help="stage 'lora': the drawing style it learns")
    p.add_argument("--rank", type=int, default=8, help="stage 'lora': the rank of its matrices")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=4, help="processes drawing the data set")
    p.add_argument("--vae-images", type=int, default=50_000)
    p.add_argument("--vae-steps", type=int, default=4000)
    p.add_argument("--vae-batch", type=int, default=128)
    p.add_argument("--vae-lr", type=float, default=1e-3)
    p.add_argument("--images", type=int, default=400_000, help="caption-image pairs (or inpainting examples)")
    p.add_argument("--steps", type=int, default=12_000, help="optimiser steps")
    p.add_argument("--max-minutes", type=float, default=math.inf, help="stop early; the learning rate decays to it")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--text-lr", type=float, default=0.0, help="text encoder's learning rate (0: --lr)")
    p.add_argument("--warmup", type=int, default=300, help="steps of linear learning-rate warm-up")
    p.add_argument("--anywhere-p", type=float, default=0.3, help="share of one-figure drawings placed anywhere")
    p.add_argument("--keep-p", type=float, default=0.7, help="chance that a caption states a size or the background")
    p.add_argument("--position-p", type=float, default=0.85, help="chance that a caption states a figure's place")
    p.add_argument("--count-p", type=float, nargs="+", default=list(FIGURE_COUNT_P), help="shares of 1, 2, 3-figure scenes")
    p.add_argument("--high-noise-p", type=float, default=0.0, help="share of samples from the noisiest tenth")
    p.add_argument("--save-minutes", type=float, default=math.inf, help="write a checkpoint this often")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--min-snr-gamma", type=float, default=0.0, help="Min-SNR weighting; 0: plain v-prediction loss")
    p.add_argument("--caption-dropout", type=float, default=0.1)
    p.add_argument("--channels", type=int, nargs="+", default=[64, 128, 128, 128])
    p.add_argument("--layers", type=int, default=1, help="U-Net layers per block")
    p.add_argument("--text-width", type=int, default=256)
    p.add_argument("--text-layers", type=int, default=4)
    p.add_argument("--compile", action="store_true", help="torch.compile the U-Net for training (falls back if it fails)")
    args = p.parse_args(argv)
    if args.stage in ("inpaint", "lora") and args.start is None:
        p.error(f"stage '{args.stage}' needs --start: the trained text-to-image model folder")
    if args.stage in ("decoder", "data", "unet") and args.vae is None:
        p.error(f"stage '{args.stage}' needs --vae: a trained autoencoder folder")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # A LoRA is one file beside others (loras/outline.safetensors): its log and record sit beside it.
    folder, stem = (args.out.parent, args.out.name) if args.stage == "lora" else (args.out, "training")
    folder.mkdir(parents=True, exist_ok=True)
    logfile = (folder / f"{stem}.log").open("a")

    def log(line: str) -> None:
        print(line, flush=True)
        logfile.write(line + "\n")
        logfile.flush()

    began = time.time()
    if args.stage == "inpaint":
        train_inpaint(args, log)
    elif args.stage == "lora":
        train_lora(args, log)
    elif args.stage == "decoder":
        train_decoder(args, log).cpu().half().save_pretrained(args.out)
    else:
        if args.stage in ("data", "unet"):
            vae = AutoencoderKL.from_pretrained(args.vae, dtype=torch.float32).to(args.device)
        else:
            vae = train_vae(args, log)
        if args.stage == "vae":
            vae.cpu().half().save_pretrained(args.out)
        elif args.stage == "data":
            write_data(args, vae, log)
        elif args.start:  # more steps on a trained model: its U-Net and text encoder go on learning
            base = StableDiffusionPipeline.from_pretrained(args.start, dtype=torch.float32)
            train_unet(args, vae, log, text_encoder=base.text_encoder, unet=base.unet)
        else:
            train_unet(args, vae, log)
        if args.stage == "all":  # the inpainting variant lives in the model's own folder
            inpaint = argparse.Namespace(**{**vars(args), "start": args.out, "out": args.out / "inpainting"})
            inpaint.out.mkdir(exist_ok=True)
            train_inpaint(inpaint, log)
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    record["wall_minutes"] = round((time.time() - began) / 60, 2)
    record["torch"] = torch.__version__
    record["accelerator"] = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    (folder / f"{stem}.json").write_text(json.dumps(record, indent=2, default=str))
    log(f"{args.stage} saved to {args.out} after {record['wall_minutes']} min")


if __name__ == "__main__":
    main()
