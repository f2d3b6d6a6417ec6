"""Train the embedded model from scratch: autoencoder, then text encoder and U-Net together.

    python -m shapeworld.train --out assets/shapes-model            # the shipped recipe, end to end
    python -m shapeworld.train vae --out runs/vae                     # stage 1 alone
    python -m shapeworld.train unet --vae runs/vae --out runs/model   # stage 2 alone
    python -m shapeworld.train grow --start runs/model --out runs/grown  # one level deeper, fine-tuned

The recipe is latent diffusion as Stable Diffusion does it, scaled down, with two changes from the
usual SD 1.x schedule that the shape world needs: v-prediction with a zero-terminal-SNR noise schedule
(Lin et al. 2023), without which the background colour cannot be steered, and Min-SNR loss weighting
(Hang et al. 2023), which speeds convergence — but weighs the noisiest steps, where the layout is
decided, near zero (`--min-snr-gamma 0` turns it off). The `grow` stage gives a trained U-Net one more
level below its bottleneck and fine-tunes it with position stated more often: at 2×2 every cell is a
quadrant, and the zero padding of the new level's convolutions tells each cell which one it is.
Everything is seeded; `training.json` in the output folder records the arguments, the steps run and the
wall time.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
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
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from diffusers.training_utils import EMAModel, compute_snr
from transformers import CLIPTextConfig, CLIPTextModel

from .tokenizer import MAX_TOKENS, build_tokenizer
from .world import make_dataset

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


def build_text_encoder(vocab_size: int, width: int) -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=width,
            intermediate_size=width * 2,
            num_hidden_layers=3,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            projection_dim=width,
        )
    )


def build_unet(channels: tuple[int, ...], layers: int, text_width: int) -> UNet2DConditionModel:
    """Cross-attention at every resolution, 16×16 included: position is decided there."""
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * len(channels),
        up_block_types=("CrossAttnUpBlock2D",) * len(channels),
        block_out_channels=channels,
        layers_per_block=layers,
        cross_attention_dim=text_width,
        attention_head_dim=8,
        norm_num_groups=32,
    )


def grow_unet(old: UNet2DConditionModel) -> UNet2DConditionModel:
    """`old` with one more level below its bottleneck, every old weight kept in place.

    Adding a last level of the same width leaves every old tensor's shape unchanged: the old up blocks
    move one place along the list, the old last down block gains a downsampler, the mid block keeps its
    weights one level lower, and the new down block and first up block start fresh.
    """
    channels = (*old.config.block_out_channels, old.config.block_out_channels[-1])
    new = build_unet(channels, old.config.layers_per_block, old.config.cross_attention_dim)
    moved = {}
    for key, value in old.state_dict().items():
        if key.startswith("up_blocks."):
            index, rest = key.removeprefix("up_blocks.").split(".", 1)
            key = f"up_blocks.{int(index) + 1}.{rest}"
        moved[key] = value
    unexpected = new.load_state_dict(moved, strict=False).unexpected_keys
    assert not unexpected, unexpected  # every old weight found its place
    return new


def _dataset_chunk(args: tuple[int, int, float, float]) -> tuple[np.ndarray, list[str]]:
    n, seed, anywhere_p, keep_p = args
    return make_dataset(n, seed, position_anywhere_p=anywhere_p, keep_p=keep_p)


def dataset(
    n: int, seed: int, workers: int, anywhere_p: float = 0.3, keep_p: float = 0.7
) -> tuple[np.ndarray, list[str]]:
    """`n` pairs drawn in chunks of 5000 (chunk i seeded `seed + i`): the same data on any core count."""
    chunks = [(min(5000, n - start), seed + i, anywhere_p, keep_p) for i, start in enumerate(range(0, n, 5000))]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_dataset_chunk, chunks))
    return np.concatenate([p[0] for p in parts]), [c for p in parts for c in p[1]]


def to_tensor(images: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def _autocast(device: str):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda"))


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


@torch.no_grad()
def encode_images(vae: AutoencoderKL, images: np.ndarray, device: str) -> torch.Tensor:
    out = []
    for start in range(0, len(images), 1024):
        with _autocast(device):
            mean = vae.encode(to_tensor(images[start : start + 1024], device)).latent_dist.mean
        out.append(mean.float() * vae.config.scaling_factor)
    return torch.cat(out)


def export(vae, text_encoder, unet, tokenizer) -> StableDiffusionPipeline:
    """The shipped form, in half precision: half the download; the pipelines upcast on load where asked."""

    def half(module):
        return copy.deepcopy(module).cpu().half().eval()

    return StableDiffusionPipeline(
        vae=half(vae),
        text_encoder=half(text_encoder),
        tokenizer=tokenizer,
        unet=half(unet),
        scheduler=EulerAncestralDiscreteScheduler(**SAMPLING_SCHEDULE),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def train_unet(
    args: argparse.Namespace,
    vae: AutoencoderKL,
    log,
    text_encoder: CLIPTextModel | None = None,
    unet: UNet2DConditionModel | None = None,
) -> StableDiffusionPipeline:
    """Train the U-Net and text encoder together, from scratch or from the given ones."""
    torch.manual_seed(args.seed)
    tokenizer = build_tokenizer()
    images, captions = dataset(args.images, args.seed, args.workers, args.anywhere_p, args.keep_p)
    latents = encode_images(vae, images, args.device)
    del images
    # Caption dropout for classifier-free guidance: the empty caption is the unconditional one.
    vocab = sorted(set(captions)) + [""]
    index = {c: i for i, c in enumerate(vocab)}
    caption_ids = torch.tensor([index[c] for c in captions], device=args.device)
    tokens = tokenizer(vocab, padding="max_length", max_length=MAX_TOKENS, return_tensors="pt").input_ids.to(args.device)

    text_encoder = (text_encoder or build_text_encoder(len(tokenizer), args.text_width)).to(args.device).train()
    unet = (unet or build_unet(tuple(args.channels), args.layers, args.text_width)).to(args.device).train()
    noise_scheduler = DDPMScheduler(**NOISE_SCHEDULE)
    # Only the named U-Net parts learn when given (the rest keeps what it knows); the text encoder always.
    for name, param in unet.named_parameters():
        param.requires_grad_(not args.unet_parts or name.startswith(tuple(args.unet_parts)))
    learning = [p for p in unet.parameters() if p.requires_grad]
    params = learning + list(text_encoder.parameters())
    groups = [{"params": learning}, {"params": list(text_encoder.parameters()), "lr": args.text_lr or args.lr}]
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.01)
    warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / args.warmup))
    ema_unet = EMAModel(unet.parameters(), decay=args.ema, use_ema_warmup=True)
    ema_text = EMAModel(text_encoder.parameters(), decay=args.ema, use_ema_warmup=True)
    gen = torch.Generator(args.device).manual_seed(args.seed)

    def ema_export() -> StableDiffusionPipeline:
        for ema, module in ((ema_unet, unet), (ema_text, text_encoder)):
            ema.store(module.parameters())
            ema.copy_to(module.parameters())
        pipe = export(vae, text_encoder, unet, tokenizer)
        for ema, module in ((ema_unet, unet), (ema_text, text_encoder)):
            ema.restore(module.parameters())
        return pipe

    start, step, saved = time.time(), 0, time.time()
    while step < args.steps and time.time() - start < args.max_minutes * 60:
        pick = torch.randint(len(latents), (args.batch,), device=args.device, generator=gen)
        x0 = latents[pick]
        ids = caption_ids[pick]
        drop = torch.rand(args.batch, device=args.device, generator=gen) < args.caption_dropout
        ids = torch.where(drop, len(vocab) - 1, ids)
        noise = torch.randn(x0.shape, device=args.device, generator=gen)
        t = torch.randint(*args.timesteps, (args.batch,), device=args.device, generator=gen)
        with _autocast(args.device):
            cond = text_encoder(tokens[ids]).last_hidden_state
            noisy = noise_scheduler.add_noise(x0, noise, t)
            pred = unet(noisy, t, cond).sample.float()
        target = noise_scheduler.get_velocity(x0, noise, t)
        # Min-SNR-γ weighting for v-prediction: min(SNR, γ) / (SNR + 1). It weighs the noisiest steps
        # near zero, and those are where the layout (position) is decided: γ = 0 turns it off.
        snr = compute_snr(noise_scheduler, t)
        weight = torch.ones_like(snr)
        if args.min_snr_gamma > 0:
            weight = torch.clamp(snr, max=args.min_snr_gamma) / (snr + 1)
        loss = (F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3)) * weight).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        warmup.step()
        ema_unet.step(unet.parameters())
        ema_text.step(text_encoder.parameters())
        if step % 500 == 0:
            log(f"unet step {step} loss {loss.item():.4f} ({time.time() - start:.0f} s)")
        if time.time() - saved > args.save_minutes * 60:  # a checkpoint to judge while training goes on
            ema_export().save_pretrained(args.out / "checkpoint", safe_serialization=True)
            log(f"checkpoint at step {step}")
            saved = time.time()
        step += 1
    args.steps_run = step
    args.unet_minutes = round((time.time() - start) / 60, 2)
    log(f"unet done: {step} steps in {args.unet_minutes} min")
    return ema_export()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", nargs="?", choices=["all", "vae", "unet", "grow"], default="all")
    p.add_argument("--out", type=Path, required=True, help="output folder (diffusers format)")
    p.add_argument("--vae", type=Path, help="stage 'unet': a trained autoencoder folder")
    p.add_argument("--start", type=Path, help="stage 'grow': a trained model folder to deepen and fine-tune")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=4, help="processes drawing the data set")
    p.add_argument("--vae-images", type=int, default=50_000)
    p.add_argument("--vae-steps", type=int, default=4000)
    p.add_argument("--vae-batch", type=int, default=128)
    p.add_argument("--vae-lr", type=float, default=1e-3)
    p.add_argument("--images", type=int, default=300_000, help="caption-image pairs for the U-Net")
    p.add_argument("--steps", type=int, default=12_000, help="U-Net optimiser steps")
    p.add_argument("--max-minutes", type=float, default=math.inf, help="stop the U-Net stage early")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--text-lr", type=float, default=0.0, help="text encoder's learning rate (0: --lr)")
    p.add_argument("--warmup", type=int, default=500, help="steps of linear learning-rate warm-up")
    p.add_argument("--anywhere-p", type=float, default=0.3, help="share of drawings placed anywhere")
    p.add_argument("--keep-p", type=float, default=0.7, help="chance that a caption states each optional part")
    p.add_argument("--timesteps", type=int, nargs=2, default=[0, 1000], metavar=("LOW", "HIGH"),
                   help="train on timesteps in [LOW, HIGH): the noisiest ones decide the layout")
    p.add_argument("--unet-parts", nargs="*", default=[], help="U-Net parameter-name prefixes that learn (default all)")
    p.add_argument("--save-minutes", type=float, default=math.inf, help="write a checkpoint this often")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--min-snr-gamma", type=float, default=5.0, help="0: plain v-prediction loss")
    p.add_argument("--caption-dropout", type=float, default=0.1)
    p.add_argument("--channels", type=int, nargs="+", default=[64, 128, 192])
    p.add_argument("--layers", type=int, default=1, help="U-Net layers per block")
    p.add_argument("--text-width", type=int, default=256)
    args = p.parse_args(argv)
    if args.stage == "grow" and args.start is None:
        p.error("stage 'grow' needs --start: the trained model folder to deepen")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logfile = (args.out / "training.log").open("a")

    def log(line: str) -> None:
        print(line, flush=True)
        logfile.write(line + "\n")
        logfile.flush()

    began = time.time()
    if args.stage == "grow":
        start = StableDiffusionPipeline.from_pretrained(args.start, dtype=torch.float32)
        pipe = train_unet(args, start.vae.to(args.device), log, start.text_encoder, grow_unet(start.unet))
    else:
        if args.stage == "unet":
            vae = AutoencoderKL.from_pretrained(args.vae, dtype=torch.float32).to(args.device)
        else:
            vae = train_vae(args, log)
            if args.stage == "vae":
                vae.cpu().half().save_pretrained(args.out)
                return
        pipe = train_unet(args, vae, log)
    pipe.save_pretrained(args.out, safe_serialization=True)
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    record["wall_minutes"] = round((time.time() - began) / 60, 2)
    record["torch"] = torch.__version__
    record["accelerator"] = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    (args.out / "training.json").write_text(json.dumps(record, indent=2, default=str))
    log(f"saved to {args.out} after {record['wall_minutes']} min")


if __name__ == "__main__":
    main()
