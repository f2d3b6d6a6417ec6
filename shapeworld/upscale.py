"""Train the embedded model's super-resolution stage, 64² → 256², as Imagen trains its cascade.

    python -m shapeworld.upscale --out assets/shapes-model/upscaler --max-minutes 45 --threads 1   # a CPU core
    python -m shapeworld.upscale --out runs/upscaler --device cuda --batch 512 --scenes 128 --max-minutes 8

The U-Net learns the residual (the truth less the upsampled small picture, ×`RESIDUAL_SCALE`), as SRDiff
does: the upsampled picture is right almost everywhere, so what there is to learn is edges and detail.
The truth is known: shapeworld draws every scene at 256² as finely as at 64², so each example is (the
64² render, the 256² render, a caption). The U-Net (`pipelines.device.pixel_upscale`) learns v-prediction
of the 256² picture conditioned on the caption and on the 64² picture upsampled and noised to a random
level (noise-conditioning augmentation; the level is its class label), so at use it repairs what the base
model drew rather than copying its blur. It is fully convolutional (cross-attention only, no
self-attention, so no dependence on the picture's size): trained on 64² crops of the large picture, it
runs on any size. The text encoder and tokenizer are the base model's, frozen and not copied.
Checkpoints (EMA weights, fp16) are written every few minutes with a PSNR reading on held-out scenes.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel
from diffusers.training_utils import EMAModel
from PIL import Image
from transformers import CLIPTextModel

from pipelines.device.pixel_upscale import PixelUpscalePipeline, upsampled
from pipelines.device.sampling import fresh_scheduler

from .tokenizer import MAX_TOKENS, build_tokenizer
from .world import IMAGE_SIZE, caption_for, draw, sample_scene

SCALE = 4
LARGE = IMAGE_SIZE * SCALE
RESIDUAL_SCALE = 2.0  # the residual is small beside the picture: scaled up so it is not lost in the noise
MAX_NOISE_LEVEL = 350  # as Stable Diffusion's ×4 upscaler: the augmentation's levels, 0…350 of a linear schedule
NOISE_SCHEDULE = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
SAMPLING = dict(timestep_spacing="trailing", algorithm_type="dpmsolver++", solver_order=2)


def build_unet(channels: tuple[int, ...], text_width: int, pack: int) -> UNet2DConditionModel:
    """Cross-attention only at the smallest level; the input is the packed noisy picture and condition."""
    levels = len(channels)
    return UNet2DConditionModel(
        sample_size=LARGE // pack, in_channels=2 * 3 * pack**2, out_channels=3 * pack**2, layers_per_block=1,
        block_out_channels=channels, down_block_types=("DownBlock2D",) * (levels - 1) + ("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",) + ("UpBlock2D",) * (levels - 1), only_cross_attention=True,
        cross_attention_dim=text_width, attention_head_dim=16, norm_num_groups=16, num_class_embeds=MAX_NOISE_LEVEL + 1,
    )


def critic(width: int = 32) -> torch.nn.Module:
    """A patch critic (PatchGAN, Isola et al. 2017) of a 256² picture beside its upsampled condition: it
    learns to tell the truth's decided edges from a blend, and its verdict on each 38-pixel patch is the
    adversarial term (`--adversarial`) that pulls the stage from the mean of the edges it could draw to one."""
    layers, channels = [], 6
    for i, out in enumerate((width, 2 * width, 4 * width)):
        layers += [torch.nn.Conv2d(channels, out, 4, 2, 1), *([torch.nn.GroupNorm(8, out)] if i else []), torch.nn.LeakyReLU(0.2)]
        channels = out
    return torch.nn.Sequential(*layers, torch.nn.Conv2d(channels, 1, 3, 1, 1))


def balanced(reconstruction: torch.Tensor, adversarial: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """The adversarial term's weight that gives its gradient at the U-Net's last layer the reconstruction's
    size (VQGAN's adaptive weight, Esser et al. 2021), so one `--adversarial` fits any loss level."""
    ours = torch.autograd.grad(reconstruction, last, retain_graph=True)[0].norm()
    theirs = torch.autograd.grad(adversarial, last, retain_graph=True)[0].norm()
    return (ours / (theirs + 1e-4)).clamp(max=1e4).detach()


def sampled(unet, start: torch.Tensor, condition: torch.Tensor, text: torch.Tensor, level: torch.Tensor,
            steps: int, sampler: str = "Euler a", generator: torch.Generator | None = None) -> torch.Tensor:
    """The packed residual the Upscale task's `sampler` makes from the noise `start` (packed, as the
    condition) in `steps` steps, its fresh noise drawn from `generator`, as `PixelUpscalePipeline` does,
    differentiable in its last step: the step that decides the picture learns from the stage's own earlier
    guesses, as it meets them at use. (Learning through every step let the critic's pull undo the
    reconstruction within 20 steps.)"""
    scheduler = fresh_scheduler(sampler, DPMSolverMultistepScheduler(**NOISE_SCHEDULE, **SAMPLING).config)
    scheduler.set_timesteps(steps, device=condition.device)
    scheduler.set_begin_index(0)
    options = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    x = start * scheduler.init_noise_sigma
    for i, t in enumerate(scheduler.timesteps):
        with torch.set_grad_enabled(torch.is_grad_enabled() and i == steps - 1):
            v = unet(torch.cat([scheduler.scale_model_input(x, t), condition], 1), t, text, class_labels=level).sample
            x = scheduler.step(v, t, x, **options).prev_sample
    return x


def examples(rng: np.random.Generator, n: int, outline_p: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`n` scenes as (64² renders, 256² renders, captions)."""
    small, large, captions = [], [], []
    for _ in range(n):
        scene = sample_scene(rng)
        style = "outline" if rng.random() < outline_p else "filled"
        small.append(draw(scene, style))
        large.append(draw(scene, style, LARGE))
        captions.append(caption_for(scene, rng, 0.7, 0.85).text)
    return np.stack(small), np.stack(large), captions


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def crops(small, large, size: int, per_scene: int, gen: torch.Generator, edge_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned crops of (the upsampled small picture, the truth), `per_scene` from each scene. A share
    `edge_p` of them is drawn where the residual is (the edges): a crop of flat colour teaches only that
    nothing is to be done there, and most of a scene is flat."""
    condition = upsampled(to_tensor(small), SCALE)
    truth = to_tensor(large)
    # How much residual each crop would hold, for corners on a grid of SCALE pixels (cheap: pooled first).
    residual = F.avg_pool2d((truth - condition).abs().sum(1, keepdim=True), SCALE)
    energy = F.avg_pool2d(residual, size // SCALE, stride=1).flatten(1) + 1e-8
    grid = (LARGE - size) // SCALE + 1
    picked_c, picked_t = [], []
    for i in range(len(truth)):
        for _ in range(per_scene):
            if torch.rand((), generator=gen) < edge_p:
                y, x = (SCALE * v for v in divmod(int(torch.multinomial(energy[i], 1, generator=gen)), grid))
            else:
                y, x = (int(v) for v in torch.randint(0, LARGE - size + 1, (2,), generator=gen))
            picked_c.append(condition[i, :, y : y + size, x : x + size])
            picked_t.append(truth[i, :, y : y + size, x : x + size])
    return torch.stack(picked_c), torch.stack(picked_t)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


def bicubic(small: np.ndarray) -> np.ndarray:
    out = upsampled(to_tensor(small), SCALE)
    return ((out + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def pipeline(unet, text_encoder, tokenizer) -> PixelUpscalePipeline:
    return PixelUpscalePipeline(
        unet=unet, scheduler=DPMSolverMultistepScheduler(**NOISE_SCHEDULE, **SAMPLING), low_res_scheduler=DDPMScheduler(),
        text_encoder=text_encoder, tokenizer=tokenizer, scale=SCALE, pack=int(math.isqrt(unet.config.out_channels // 3)),
        max_noise_level=MAX_NOISE_LEVEL, residual_scale=RESIDUAL_SCALE,
    )


def save(folder: Path, pipe: PixelUpscalePipeline) -> None:
    """The stage's own folder holds its U-Net and schedulers; it is loaded with the base model's text
    encoder and tokenizer, as the inpainting variant is."""
    half = copy.deepcopy(pipe.unet).cpu().half().eval()
    PixelUpscalePipeline(**{**pipe.components, "unet": half}, **{k: pipe.config[k] for k in ("scale", "pack", "max_noise_level", "residual_scale")}
                         ).save_pretrained(folder, safe_serialization=True)
    for shared in ("text_encoder", "tokenizer"):
        shutil.rmtree(folder / shared, ignore_errors=True)


def held_out_psnr(pipe, n: int, steps: int, noise_level: int) -> tuple[float, float]:
    """Mean PSNR against the true 256² render on `n` held-out scenes: (upscaler, bicubic)."""
    small, large, captions = examples(np.random.default_rng(987_654), n, 0.2)
    out = pipe(captions, [Image.fromarray(s) for s in small], num_inference_steps=steps, noise_level=noise_level,
               generator=torch.Generator().manual_seed(0), output_type="np").images
    ours = (np.asarray(out) * 255).round().astype(np.uint8)
    base = bicubic(small)
    return float(np.mean([psnr(o, t) for o, t in zip(ours, large)])), float(np.mean([psnr(b, t) for b, t in zip(base, large)]))


def train(args: argparse.Namespace, log) -> None:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    # Adam's second moments of tiny gradients turn subnormal, and subnormal arithmetic on a CPU runs about
    # ten times slower (measured: 0.75 → 7.5 s a step after the first hundred steps).
    torch.set_flush_denormal(True)
    tokenizer = build_tokenizer()
    text_encoder = CLIPTextModel.from_pretrained(args.base / "text_encoder", dtype=torch.float32).eval().requires_grad_(False)
    unet = build_unet(tuple(args.channels), text_encoder.config.hidden_size, args.pack)
    device = torch.device(args.device)
    if args.resume:
        unet.load_state_dict(UNet2DConditionModel.from_pretrained(args.resume, subfolder="unet").float().state_dict())
    log(f"U-Net: {sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M parameters")
    unet, text_encoder = unet.to(device), text_encoder.to(device)
    noise_scheduler, low_res = DDPMScheduler(**NOISE_SCHEDULE), DDPMScheduler()
    params = list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    ema = EMAModel(params, decay=args.ema, use_ema_warmup=True, foreach=True)
    judge = critic().to(device) if args.adversarial else None
    judge_opt = torch.optim.Adam(judge.parameters(), lr=args.critic_lr, betas=(0.5, 0.9)) if judge else None
    root_alpha = noise_scheduler.alphas_cumprod.sqrt().to(device)
    root_sigma = (1 - noise_scheduler.alphas_cumprod).sqrt().to(device)
    rng, gen = np.random.default_rng(args.seed), torch.Generator().manual_seed(args.seed)
    tokens = lambda captions: tokenizer(captions, padding="max_length", max_length=MAX_TOKENS, return_tensors="pt").input_ids  # noqa: E731

    def checkpoint(step: int) -> None:
        ema.store(params)
        ema.copy_to(params)
        pipe = pipeline(unet, text_encoder, tokenizer)
        save(args.out, pipe)
        ours, base = held_out_psnr(pipe, args.eval_scenes, args.eval_steps, 20) if args.eval_scenes else (0.0, 0.0)
        ema.restore(params)
        log(f"checkpoint at step {step}: held-out PSNR {ours:.2f} dB, bicubic {base:.2f} dB")
        write_record(args, step, start)

    budget, start, saved, step = args.max_minutes * 60, time.time(), time.time(), 0
    while step < args.steps and time.time() - start < budget:
        progress = min(1.0, (time.time() - start) / budget)
        for group in opt.param_groups:  # warm-up, then cosine to a tenth
            group["lr"] = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))
        small, large, captions = examples(rng, args.scenes, args.outline_p)
        condition, truth = crops(small, large, args.crop, args.batch // args.scenes, gen, args.edge_p)
        condition, truth = condition.to(device), truth.to(device)
        x0 = (truth - condition) * RESIDUAL_SCALE
        captions = [c for c in captions for _ in range(args.batch // args.scenes)]
        captions = [("" if torch.rand((), generator=gen) < args.caption_dropout else c) for c in captions]
        batch = len(x0)
        # Noise-conditioning augmentation: mostly light levels (the default dial), sometimes heavy (its range).
        # (drawn on the CPU from one generator: the same run on any device)
        level = (MAX_NOISE_LEVEL * torch.rand(batch, generator=gen) ** args.level_power).long().to(device)
        clean = condition
        condition = low_res.add_noise(condition, torch.randn(condition.shape, generator=gen).to(device), level)
        noise = torch.randn(x0.shape, generator=gen).to(device)
        # Noisier levels drawn more often (density rising with t for --t-power > 1): the first sampling
        # steps, which settle the shapes' edges, are learned first.
        t = (1000 * torch.rand(batch, generator=gen) ** (1 / args.t_power)).long().clamp(max=999).to(device)
        noisy = noise_scheduler.add_noise(x0, noise, t)
        with torch.no_grad():
            text = text_encoder(tokens(captions).to(device)).last_hidden_state
        pack = lambda x: F.pixel_unshuffle(x, args.pack)  # noqa: E731
        pred = unet(torch.cat([pack(noisy), pack(condition)], 1), t, text, class_labels=level).sample
        velocity = F.pixel_shuffle(pred, args.pack)
        loss = F.mse_loss(velocity, noise_scheduler.get_velocity(x0, noise, t))
        if args.sampled_steps:
            # The residual the sampler makes at use, from pure noise in `--sampled-steps` steps: at use the
            # last step sees the stage's own first guess, never the truth noised.
            pure = pack(torch.randn(x0.shape, generator=gen).to(device))
            made = sampled(unet, pure, pack(condition), text, level, args.sampled_steps, args.sampler, gen)
            made = F.pixel_shuffle(made, args.pack)
            loss = loss + F.mse_loss(made, x0)
        else:
            # The picture this step's prediction implies (v-prediction: x0 = √ᾱ·x_t − √(1−ᾱ)·v).
            at = lambda table: table[t].view(-1, 1, 1, 1)  # noqa: E731
            made = at(root_alpha) * noisy - at(root_sigma) * velocity
        if judge:
            # That picture judged beside its clean condition against the truth; the critic learns first,
            # the stage heeds it after.
            fake = torch.cat([(clean + made / RESIDUAL_SCALE).clamp(-1, 1), clean], 1)
            real = torch.cat([truth, clean], 1)
            judge_loss = F.relu(1 - judge(real)).mean() + F.relu(1 + judge(fake.detach())).mean()
            judge_opt.zero_grad(set_to_none=True)
            judge_loss.backward()
            judge_opt.step()
            if step >= args.critic_warmup:
                fooled = -judge(fake).mean()
                loss = loss + args.adversarial * balanced(loss, fooled, unet.conv_out.weight) * fooled
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.step(params)
        if step % 50 == 0:
            critic_said = f" critic {judge_loss.item():.3f}" if judge else ""
            log(f"step {step} loss {loss.item():.4f}{critic_said} lr {opt.param_groups[0]['lr']:.2e} ({time.time() - start:.0f} s)")
        if time.time() - saved > args.save_minutes * 60:
            checkpoint(step)
            saved = time.time()
        step += 1
    log(f"done: {step} steps in {(time.time() - start) / 60:.2f} min")
    checkpoint(step)


def write_record(args: argparse.Namespace, step: int, start: float) -> None:
    """What made the checkpoint beside it, written with each one: a stopped run's folder is complete."""
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    record.update(steps_run=step, train_minutes=round((time.time() - start) / 60, 2), torch=torch.__version__,
                  accelerator=torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu")
    (args.out / "training.json").write_text(json.dumps(record, indent=2))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--base", type=Path, default=Path("assets/shapes-model"), help="the model whose text encoder conditions it")
    p.add_argument("--resume", type=Path, help="a saved stage to go on training")
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64, 96])
    p.add_argument("--pack", type=int, default=2)
    p.add_argument("--crop", type=int, default=64, help="side of the training crops of the 256² truth")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--scenes", type=int, default=8, help="scenes drawn per batch (the rest are more crops of them)")
    p.add_argument("--edge-p", type=float, default=0.75, help="share of crops drawn where the edges are")
    p.add_argument("--t-power", type=float, default=2.0, help="1: every level of noise equally often")
    p.add_argument("--level-power", type=float, default=4.0,
                   help="augmentation levels drawn as max·u^power: most runs ask for little new detail")
    p.add_argument("--outline-p", type=float, default=0.2)
    p.add_argument("--caption-dropout", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--adversarial", type=float, default=0.0,
                   help="weight of a patch critic's verdict beside the reconstruction (0: none), for decided edges")
    p.add_argument("--sampled-steps", type=int, default=0,
                   help="also learn (and judge) the picture --sampler makes in this many steps (0: not)")
    p.add_argument("--sampler", default="Euler a", help="the Upscale task's sampler that --sampled-steps runs")
    p.add_argument("--critic-lr", type=float, default=2e-4)
    p.add_argument("--critic-warmup", type=int, default=100, help="steps the critic learns before the stage heeds it")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--steps", type=int, default=10**9)
    p.add_argument("--max-minutes", type=float, default=60.0)
    p.add_argument("--save-minutes", type=float, default=8.0)
    p.add_argument("--eval-scenes", type=int, default=12)
    p.add_argument("--eval-steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cuda on a lent GPU (larger --batch and --scenes there)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logfile = (args.out / "training.log").open("a")

    def log(line: str) -> None:
        print(line, flush=True)
        logfile.write(line + "\n")
        logfile.flush()

    train(args, log)
    log(f"saved to {args.out}")


if __name__ == "__main__":
    main()
