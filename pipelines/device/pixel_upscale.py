"""Super-resolution in pixels, as Imagen's cascade does it: the embedded model's upscaling stage.

A U-Net denoises the large picture conditioned on the caption and on the small picture upsampled
(bicubic) and noised to a chosen level — noise-conditioning augmentation (Saharia et al. 2022): trained
on every level, it learns to repair what the base model drew, and the level at which it runs is the
"new detail" dial. The call mirrors diffusers' `StableDiffusionUpscalePipeline` (prompt, image,
`noise_level`, steps, guidance, generator, step callback), so a task drives either the same way.

What it denoises is the residual, the large picture less the upsampled small one (times `residual_scale`),
as SRDiff does (Li et al. 2022): the upsampled picture is already right almost everywhere, so the U-Net
spends itself on the edges and fine detail, and learns in a fraction of the steps.

For speed on a CPU the U-Net works on the picture packed 2×2 into channels (pixel unshuffle): a quarter
of the positions, the same information; its input is the packed noisy picture and the packed condition.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, DiffusionPipeline, StableDiffusionPipeline, UNet2DConditionModel
from diffusers.image_processor import VaeImageProcessor
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image


def upsampled(pixels: torch.Tensor, scale: int) -> torch.Tensor:
    """The small picture (in [-1, 1]) at the large size: the condition the U-Net was trained on."""
    return F.interpolate(pixels, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


class PixelUpscalePipeline(DiffusionPipeline):
    """Text-conditioned ×`scale` super-resolution in pixel space (see the module's docstring)."""

    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(self, unet: UNet2DConditionModel, scheduler, low_res_scheduler: DDPMScheduler, text_encoder,
                 tokenizer, scale: int = 4, pack: int = 2, max_noise_level: int = 350, residual_scale: float = 2.0):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler, low_res_scheduler=low_res_scheduler,
                              text_encoder=text_encoder, tokenizer=tokenizer)
        self.register_to_config(scale=scale, pack=pack, max_noise_level=max_noise_level, residual_scale=residual_scale)
        self.image_processor = VaeImageProcessor(vae_scale_factor=1, do_resize=False)

    # The same text encoding as Stable Diffusion's (weighted prompts replace it per run, as everywhere).
    encode_prompt = StableDiffusionPipeline.encode_prompt

    @property
    def multiple(self) -> int:
        """The large picture's sides must divide by this: the packing, then the U-Net's halvings."""
        return self.config.pack * 2 ** (len(self.unet.config.block_out_channels) - 1)

    def pack(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(pixels, self.config.pack)

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(packed, self.config.pack)

    def picture(self, latents: torch.Tensor) -> torch.Tensor:
        """The large pictures the (packed, scaled) residuals make on the upsampled small ones."""
        return (self._base[: len(latents)] + self.unpack(latents.float()) / self.config.residual_scale).clamp(-1, 1)

    def preview(self, latents: torch.Tensor) -> Image.Image:
        """The first picture of a batch as it stands."""
        return self.image_processor.postprocess(self.picture(latents[:1]), output_type="pil")[0]

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @torch.no_grad()
    def __call__(self, prompt=None, image=None, num_inference_steps: int = 8, guidance_scale: float = 1.0,
                 noise_level: int = 20, negative_prompt=None, num_images_per_prompt: int = 1, generator=None,
                 output_type: str = "pil", callback_on_step_end=None,
                 callback_on_step_end_tensor_inputs=("latents",), return_dict: bool = True):
        if image is None:
            raise ValueError("an image to upscale is required")
        if not 0 <= noise_level <= self.config.max_noise_level:
            raise ValueError(f"noise_level must be 0…{self.config.max_noise_level}, not {noise_level}")
        device, dtype = self._execution_device, self.unet.dtype
        prompts = [prompt] if isinstance(prompt, str) or prompt is None else list(prompt)
        prompts = ["" if p is None else p for p in prompts]
        guided = guidance_scale > 1.0
        embeds, negative = self.encode_prompt(prompts, device, num_images_per_prompt, guided, negative_prompt)
        batch = len(embeds)

        # 1. The condition: the small picture upsampled, padded to what the U-Net divides, then noised
        #    to the asked level (one level for the whole batch, as the U-Net was told at training).
        small = self.image_processor.preprocess(image).to(device=device, dtype=torch.float32)
        if len(small) != batch:
            small = small.repeat_interleave(batch // len(small), dim=0)
        large = upsampled(small, self.config.scale)
        height, width = large.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        large = F.pad(large, (0, pad_w, 0, pad_h), mode="replicate")
        level = torch.full((batch,), int(noise_level), device=device, dtype=torch.long)
        noise = randn_tensor(large.shape, generator=generator, device=device, dtype=large.dtype)
        condition = self.pack(self.low_res_scheduler.add_noise(large, noise, level)).to(dtype)
        self._base = large  # what the residual is added to (kept for previews during the run)

        # 2. Denoise from pure noise, the U-Net seeing the packed noisy picture beside the condition.
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        # Counted from the first step, not looked up by timestep: Karras sigmas on this cosine schedule give
        # t = 999 twice, and a lookup then starts one step late and runs past the end (IndexError at 8 steps).
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(0)
        self._num_timesteps = len(timesteps)
        latents = self.pack(randn_tensor(large.shape, generator=generator, device=device, dtype=torch.float32))
        latents = latents * self.scheduler.init_noise_sigma
        text = (torch.cat([negative, embeds]) if guided else embeds).to(dtype)
        labels = torch.cat([level, level]) if guided else level
        cond = torch.cat([condition, condition]) if guided else condition
        # Ancestral samplers draw noise each step from the generator; the others take no generator.
        step_options = {"generator": generator} if "generator" in inspect.signature(self.scheduler.step).parameters else {}
        for i, t in enumerate(timesteps):
            model_in = self.scheduler.scale_model_input(latents, t)
            model_in = torch.cat([model_in, model_in]) if guided else model_in
            pred = self.unet(torch.cat([model_in.to(dtype), cond], 1), t, text, class_labels=labels).sample.float()
            if guided:
                uncond, conditioned = pred.chunk(2)
                pred = uncond + guidance_scale * (conditioned - uncond)
            latents = self.scheduler.step(pred, t, latents, **step_options).prev_sample
            if callback_on_step_end is not None:
                latents = callback_on_step_end(self, i, t, {"latents": latents}).get("latents", latents)

        pixels = self.picture(latents)[..., :height, :width]
        self.maybe_free_model_hooks()
        images = self.image_processor.postprocess(pixels, output_type=output_type)
        return ImagePipelineOutput(images=images) if return_dict else (images,)
