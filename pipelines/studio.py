"""Studio: the one object the UI talks to.

It validates a request before anything is queued, then returns a started Job whose work takes the
manager's lock, gets the task's pipeline, gives it a fresh scheduler, runs the task module and turns the
images into results with recipes. Importing this module loads no torch; the task modules are imported
when a job first runs.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from .errors import AtelierError
from .jobs import Job, JobContext, Result
from .outputs import OutputStore
from .recipe import Recipe, attach, image_id
from .requests import (
    InpaintRequest,
    Limits,
    MorphRequest,
    OutpaintRequest,
    Request,
    Txt2ImgRequest,
    ValidationError,
    VariationsRequest,
)
from .settings import Settings

KEEP_SCRATCH = 32  # job folders (animations) kept on disk; older ones are removed
PREVIEW_SECONDS = 0.5  # a preview costs a decode; twice a second is enough to watch a picture form


def output_pixels(request: Request) -> int:
    """Width × height of the pictures a request makes (an edited image keeps its own size)."""
    if hasattr(request, "width"):
        return request.width * request.height
    return request.image.width * request.image.height


if TYPE_CHECKING:
    from .manager import PipelineManager
    from .registry import ModelPreset


class Studio:
    def __init__(self, manager: PipelineManager, settings: Settings | None = None):
        self.manager = manager
        self.settings = settings or Settings()
        self.outputs = OutputStore(self.settings.outputs) if self.settings.outputs else None
        # Every job runs on this one long-lived thread: the work is serialised anyway, and torch's
        # CPU thread pool is set up once instead of per job (a fresh thread cost 10 % of a 1 s image).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atelier-accelerator")
        self._scratch_root = tempfile.TemporaryDirectory(prefix="atelier-")  # removed with the studio

    # -- what the UI asks before it builds itself -----------------------------------------------------

    @property
    def model_names(self) -> tuple[str, ...]:
        return self.manager.registry.names

    def preset(self, model: str) -> ModelPreset:
        try:
            return self.manager.registry.get(model)
        except KeyError:
            raise ValidationError("model", f"{str(model)[:80]!r} is not one of: {', '.join(self.model_names)}") from None

    def limits(self, model: str) -> Limits:
        preset = self.preset(model)
        return Limits(
            min_size=preset.min_size,
            max_size=preset.max_size,
            max_pixels=self.settings.max_pixels,
            max_images=self.settings.max_images,
            schedulers=preset.schedulers,
            models=self.model_names,
        )

    # -- tasks ----------------------------------------------------------------------------------------

    def txt2img(self, request: Txt2ImgRequest) -> Job:
        request = self._validated(request)

        def work(ctx: JobContext) -> Result:
            from . import txt2img

            with self._pipeline(ctx, request, "txt2img") as (pipe, seeds, on_step):
                images = txt2img.text_to_image(pipe, request, seeds, on_step=on_step, should_stop=ctx.cancelled.is_set)
                notices = self._prompt_notices(pipe, request.prompt, request.negative_prompt)
            return self._finish(request, images, seeds, notices=notices)

        return self._start(request, work)

    def variations(self, request: VariationsRequest) -> Job:
        request = self._validated(request)

        def work(ctx: JobContext) -> Result:
            from . import variations

            preset = self.preset(request.model)
            with self._pipeline(ctx, request, "img2img") as (pipe, seeds, on_step):
                images, strength = variations.vary(
                    pipe, request, preset, seeds, self.manager, on_step=on_step, should_stop=ctx.cancelled.is_set
                )
            return self._finish(request, images, seeds, strength=strength, similarity=request.similarity, mode=request.mode)

        return self._start(request, work)

    def morph(self, request: MorphRequest) -> Job:
        request = self._validated(request)

        def work(ctx: JobContext) -> Result:
            from . import interpolation

            with self._pipeline(ctx, request, "img2img" if request.image_a else "txt2img") as (pipe, seeds, on_step):
                morph = interpolation.morph(pipe, request, seeds[0], on_step=on_step, should_stop=ctx.cancelled.is_set)
            recipes = [
                self._recipe(request, frame, seeds[0], position=float(t), extra={"spacing": morph.spacing})
                for frame, t in zip(morph.frames, morph.positions)
            ]
            result = self._finish(request, morph.frames, seeds, recipes=recipes)
            files = interpolation.write_animations(morph.frames, self._scratch(), request.fps, request.pingpong)
            return dataclasses.replace(result, files=files)

        return self._start(request, work)

    def inpaint(self, request: InpaintRequest) -> Job:
        return self._paint(self._validated(request))

    def outpaint(self, request: OutpaintRequest) -> Job:
        """Extend the canvas, then inpaint the new border; the original pixels are protected exactly."""
        from .masks import extend_canvas

        request = self._validated(request)
        canvas, mask = extend_canvas(request.image, request.left, request.right, request.top, request.bottom)
        return self._paint(dataclasses.replace(request, image=canvas, mask=mask), protect=request)

    def _paint(self, request: InpaintRequest, protect: OutpaintRequest | None = None) -> Job:
        from .masks import checked_mask

        checked_mask(request.mask, request.image.size, request.grow)  # an empty mask is refused before queueing

        def work(ctx: JobContext) -> Result:
            import numpy as np

            from . import inpainting

            keep = None
            if protect is not None:
                keep = np.zeros((request.image.height, request.image.width), bool)
                keep[protect.top : protect.top + protect.image.height, protect.left : protect.left + protect.image.width] = True
            with self._pipeline(ctx, request, "inpaint") as (pipe, seeds, on_step):
                painted = inpainting.inpaint(
                    pipe, request, seeds, protect=keep, on_step=on_step, should_stop=ctx.cancelled.is_set
                )
            return self._finish(
                request,
                painted.images,
                seeds,
                strength=request.strength,
                mask_hash=painted.mask_hash,
                seams=painted.seams,
                extra=painted.settings,
            )

        return self._start(request, work)

    # -- residency ------------------------------------------------------------------------------------

    def residency(self) -> list[dict[str, Any]]:
        loaded = {r.model: r for r in self.manager.resident()}
        rows = []
        for name in self.model_names:
            r = loaded.get(name)
            rows.append(
                {
                    "model": name,
                    "state": "resident" if r else self.manager.switch_cost(name),
                    "device": r.device if r else "",
                    "dtype": r.dtype if r else "",
                    "MB": r.megabytes if r else 0.0,
                    "pinned": bool(r and r.pinned),
                }
            )
        return rows

    def unload(self, model: str) -> bool:
        self.preset(model)
        return self.manager.unload(model)

    def pin(self, model: str, pinned: bool) -> None:
        self.preset(model)
        self.manager.pin(model, pinned)

    # -- shared machinery -----------------------------------------------------------------------------

    def _start(self, request: Request, work) -> Job:
        """A started job whose work is the accelerator entry point (lent per call on ZeroGPU)."""
        from .zerogpu import gpu_seconds, on_gpu

        width, height = getattr(request, "width", 512), getattr(request, "height", 512)
        frames = getattr(request, "num_frames", 1)
        seconds = gpu_seconds(request.steps, width, height, max(request.num_images, frames))
        return Job(on_gpu(work, seconds)).start(self._worker)

    def _validated(self, request: Request):
        return request.validated(self.limits(request.model))

    @contextmanager
    def _pipeline(self, ctx: JobContext, request: Request, task: str):
        """Under the lock: the task's pipeline with a fresh scheduler, the seeds, and the step hook."""
        import torch

        from .previews import latent_preview
        from .sampling import resolve_seed, seeds_for

        preset = self.preset(request.model)
        seeds = seeds_for(resolve_seed(request.seed), request.num_images)
        with self.manager.lock:
            ctx.check()
            if not self.manager.is_resident(request.model):
                ctx.report(0, request.steps, message=f"Loading {preset.label}…")
            pipe = self.manager.pipeline(
                request.model, task, report=lambda done, message: ctx.report(0, 0, message=f"{message} {done:.0%}")
            )
            pipe.scheduler = self.manager.scheduler(pipe, request.scheduler)
            # Above the threshold the autoencoder works tile by tile, its memory that of one tile. It is
            # shared by every view, so the choice is made afresh for each run.
            if output_pixels(request) > self.settings.vae_tiling_pixels:
                pipe.vae.enable_tiling()
            else:
                pipe.vae.disable_tiling()

            last_preview = [time.perf_counter()]  # the first preview after PREVIEW_SECONDS, not at step 1

            def on_step(step: int, total: int, latents) -> None:
                # A preview costs a device sync and a decode: make one at most every PREVIEW_SECONDS.
                now = time.perf_counter()
                preview = None
                if now - last_preview[0] >= PREVIEW_SECONDS and step < total:
                    preview, last_preview[0] = latent_preview(pipe, latents, preset), now
                ctx.report(step, total, preview)

            try:
                yield pipe, seeds, on_step
            except torch.OutOfMemoryError as e:
                self.manager.release_memory()
                raise AtelierError("Out of accelerator memory: try a smaller size or fewer images.") from e
            except Exception:
                self.manager.release_memory()
                raise
            finally:
                self.manager.return_freed_memory()

    def _prompt_notices(self, pipe, *prompts: str) -> tuple[str, ...]:
        """Say so when a prompt is longer than the text encoder reads: the rest is ignored."""
        tokenizer = pipe.tokenizer
        notices = []
        for prompt in prompts:
            count = len(tokenizer(prompt).input_ids)
            if count > tokenizer.model_max_length:
                notices.append(
                    f"The prompt has {count} tokens; this model reads {tokenizer.model_max_length}, so its end was ignored."
                )
        return tuple(notices)

    def _recipe(self, request: Request, image: Image.Image, seed: int, **fields: Any) -> Recipe:
        base = dict(
            task=request.task,
            model=request.model,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            seed=seed,
            steps=request.steps,
            guidance_scale=request.guidance_scale,
            scheduler=request.scheduler,
            width=image.width,
            height=image.height,
            guidance_rescale=getattr(request, "guidance_rescale", 0.0),
            prompt_b=getattr(request, "prompt_b", None),
            seed_b=getattr(request, "seed_b", None),
            parent=request.parent,
            image_id=image_id(image),
        )
        base.update(fields)
        return Recipe(**base)

    def _finish(
        self,
        request: Request,
        images: list[Image.Image],
        seeds: list[int],
        *,
        recipes: list[Recipe] | None = None,
        notices: tuple[str, ...] = (),
        seams: list[float] | None = None,
        **fields: Any,
    ) -> Result:
        if recipes is None:
            recipes = [
                self._recipe(request, image, seed, notices=notices, seam=None if seams is None else seams[i], **fields)
                for i, (image, seed) in enumerate(zip(images, seeds))
            ]
        for image, recipe in zip(images, recipes):
            attach(image, recipe)
            if self.outputs is not None:
                self.outputs.save(image, recipe)
        return Result(images=images, recipes=recipes, notices=notices)

    def _scratch(self) -> Path:
        """A fresh folder for a job's files (GIF, MP4) under this studio's own temporary root.

        Gradio copies returned files into its cache, so only the newest KEEP_SCRATCH folders are kept:
        a long-running server does not fill its disk with old animations.
        """
        folder = Path(tempfile.mkdtemp(dir=self._scratch_root.name))
        older = sorted(Path(self._scratch_root.name).iterdir(), key=lambda p: p.stat().st_mtime)[:-KEEP_SCRATCH]
        for old in older:
            shutil.rmtree(old, ignore_errors=True)
        return folder

