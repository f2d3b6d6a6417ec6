"""Studio: the front, the one object the UI talks to.

It knows no task by name. For any request it validates (before anything is queued) against the limits
of the model asked for, draws the seeds, hands the task's name, the request and the seeds to the runner,
and turns the images that come back into results: a recipe per image (the settings every task shares,
plus the task's own), written into the PNG, signed with Content Credentials (C2PA) that name what made it
and what it was made from, and whatever files the task makes of its images. Every result goes into the
Library — the one place that saves and indexes — with whose it is. All of this runs in the thread that
asks for the result, never on the accelerator's.
Importing this module loads no torch.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

from PIL import Image

from ..tasks import TASKS
from .credentials import MIME_TYPES, Credentials, RunSigning
from .credentials import read as read_credentials
from .errors import ValidationError
from .jobs import Job, Result
from .library import Libraries, Library, NotFound
from .outputs import Scratch
from .recipe import Recipe, attach, image_id, png_bytes
from .registry import ModelPreset, Registry
from .requests import Limits, Request
from .runner import ModelState, Output, Runner, Task
from .styles import Style, StyleBook, disagreements


class Studio:
    def __init__(
        self,
        runner: Runner,
        registry: Registry,
        *,
        outputs: str = "",
        max_pixels: int = 1024 * 1024,
        max_images: int = 8,
        styles: StyleBook | None = None,
        credentials: Credentials | None = None,
    ):
        self.runner = runner
        self.registry = registry
        # The outputs folder's library; with none (a public demo) a library in memory per browser session.
        self.libraries = Libraries(outputs)
        self.max_pixels = max_pixels  # largest image a request may ask for or upload
        self.max_images = max_images  # most images in one request
        self.styles = styles or StyleBook(None)  # the person's saved styles (none kept without a file)
        self.credentials = credentials  # signs every result; None: results are saved unsigned (--no-credentials)
        self._scratch = Scratch()
        self._views: dict[str, tuple[tuple, Limits]] = {}  # model → (its files' state, the limits built from them)

    # -- what the UI asks before it builds itself -----------------------------------------------------

    @property
    def model_names(self) -> tuple[str, ...]:
        return self.registry.names

    @property
    def task_names(self) -> tuple[str, ...]:
        return TASKS.names

    def preset(self, model: str) -> ModelPreset:
        try:
            return self.registry.get(model)
        except KeyError:
            raise ValidationError(
                "model", f"{str(model)[:80]!r} is not one of: {', '.join(self.model_names)}"
            ) from None

    def limits(self, model: str) -> Limits:
        """What `model` accepts on this server: one view, built again only when the model or its files
        (LoRAs, styles) change; every request's validation reads it."""
        preset = self.preset(model)
        files = (*self.registry.lora_files(model), *self.styles.files_for(preset))
        state = tuple((str(path), *stamp(path)) for path in files)
        seen = self._views.get(model)
        if seen is not None and seen[0] == state:
            return seen[1]
        limits = self._build_limits(preset)
        self._views[model] = (state, limits)
        return limits

    def _build_limits(self, preset: ModelPreset) -> Limits:
        model = preset.name
        return Limits(
            min_size=preset.min_size,
            max_size=preset.max_size,
            native_size=preset.native_size,
            cascade_scale=preset.upscalers[0].scale if preset.cascade else 1,
            family=preset.family,
            image_prompt=preset.ip_adapter is not None,
            max_pixels=self.max_pixels,
            max_images=self.max_images,
            schedulers=preset.schedulers,
            models=self.model_names,
            loras=tuple(self.registry.lora_refusals(model).items()),
            styles=tuple(style.text for style in self.styles_for(model).values()),
        )

    def loras(self, model: str) -> tuple[str, ...]:
        """The names of the LoRAs that fit `model`, for a picker."""
        return tuple(sorted(name for name, why in self.limits(model).loras if not why))

    def styles_for(self, model: str) -> dict[str, Style]:
        """The styles offered with `model`: those its folder ships and the person's own."""
        return self.styles.for_model(self.preset(model))

    # -- work -----------------------------------------------------------------------------------------

    def submit(self, request: Request, *, user: str | None = None, session: str | None = None) -> Job[Result]:
        """Validate `request` (a ValidationError names the field), start its task on the runner, and
        return the job: its events stream progress, its result has the images with their recipes.

        user: who signed in ('' or None: the local single user); their results are theirs alone.
        session: the browser session, whose library in memory keeps the results when there is no
            outputs folder (a public demo).
        """
        task = TASKS.of(request)
        limits = self.limits(request.model)
        checked = request.validated(limits)
        library = self.libraries.of(session)
        known_parent(checked, library, user)
        # The typed prompt against the picked styles' words; then what was resized.
        notices = (*disagreements(request.prompt, checked.styles, limits.styles),
                   *resize_notices(request, checked, self.max_pixels))
        seeds = checked.draw_seeds()
        keep = partial(self._finish, task, checked, notices, library, user)
        return self.runner.submit(task.name, checked, seeds).then(keep)

    def library(self, session: str | None = None) -> Library | None:
        """The library a session's results go into and its person looks in (see `Libraries.of`)."""
        return self.libraries.of(session)

    def __getattr__(self, name: str) -> Callable[[Request], Job[Result]]:
        """Every registered task is also a method: `studio.txt2img(request)` is `submit(request)` for
        a Text to image request."""
        if name.startswith("_") or name not in TASKS.names:
            raise AttributeError(name)

        def submit(request: Request) -> Job[Result]:
            if request.task != name:
                raise TypeError(f"studio.{name} takes a {name} request, not {type(request).__name__}")
            return self.submit(request)

        return submit

    def _finish(self, task: Task, request: Request, notices: tuple[str, ...], library: Library | None,
                user: str | None, output: Output) -> Result:
        """Recipes into the images, the images and the task's files signed, the images into the library and
        the files beside them; what the front changed (a resized upload) said first, then what the work
        reported, then any file that could not be signed."""
        output = replace(output, notices=(*notices, *output.notices))
        recipes = [self._recipe(request, image, output, i) for i, image in enumerate(output.images)]
        for image, recipe in zip(output.images, recipes):
            attach(image, recipe)
        sign = self._signing(request, library, user)
        pngs = [sign(png_bytes(image, recipe), "image/png", recipe) for image, recipe in zip(output.images, recipes)]
        files = task.files(request, output.images, self._scratch.folder()) if task.files else {}
        for path in files.values():  # signed in place: the page serves these, the outputs folder copies them
            Path(path).write_bytes(sign(Path(path).read_bytes(), MIME_TYPES.get(Path(path).suffix), recipes[0]))
        if library is not None:
            # Images of a run that share a seed (a morph's frames) are numbered, so their files sort in order.
            shared_seed = len(set(output.seeds)) < len(output.seeds)
            rows = [library.add(image, recipe, user, index=i if shared_seed else None, data=png)
                    for i, (image, recipe, png) in enumerate(zip(output.images, recipes, pngs))]
            for path in files.values():  # the page serves the scratch copies; the outputs folder keeps its own
                library.keep_beside(path, rows[0]["path"])
        notices = (*output.notices, *dict.fromkeys(sign.failures))
        return Result(images=output.images, recipes=recipes, notices=notices, files=files, pngs=pngs)

    def _signing(self, request: Request, library: Library | None, user: str | None) -> RunSigning:
        """What signs a run's files: with the parent's own file from the library as its ingredient, where
        the library has it. Does nothing without credentials."""
        parent = None
        if self.credentials is not None and library is not None and request.parent:
            try:
                parent = library.png(user, request.parent)
            except NotFound:
                pass  # an upload that was never in this library: the picture given stands for it
        preset = self.preset(request.model)
        return RunSigning(self.credentials, request, parent, "" if preset.is_local else preset.source)

    def _recipe(self, request: Request, image, output: Output, index: int) -> Recipe:
        return Recipe(
            task=request.task,
            model=request.model,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            seed=output.seeds[index],
            steps=request.steps,
            guidance_scale=request.guidance_scale,
            scheduler=request.scheduler,
            width=image.width,
            height=image.height,
            settings={**request.recipe_fields(), **output.fields_of(index)},
            parent=request.parent,
            loras=[[name, weight] for name, weight in request.loras],
            styles=list(request.styles),
            image_id=image_id(image),
            notices=output.notices,
        )

    def read_credentials(self, data: bytes) -> dict:
        """Any file's Content Credentials, validated against this studio's trust anchors (see
        `credentials.read`): whether it carries any, is valid, trusted, changed since signing, AI-made."""
        return self.credentials.read(data) if self.credentials is not None else read_credentials(data)

    @property
    def signer(self) -> str:
        """Who signs this studio's results, in words."""
        if self.credentials is None:
            return "Results are saved without Content Credentials (signing is off)."
        return f"Results are signed with Content Credentials by {self.credentials.identity.described}."

    def download(self, library: Library, user: str | None, image_id: str) -> str:
        """A copy of one of the person's PNGs (recipe inside) in a scratch folder, for a download: the page
        serves nothing from the outputs folder itself. Raises NotFound."""
        path = self._scratch.folder() / f"atelier-{image_id}.png"
        path.write_bytes(library.png(user, image_id))
        return str(path)

    # -- residency ------------------------------------------------------------------------------------

    def residency(self) -> list[ModelState]:
        return self.runner.models()

    def unload(self, model: str) -> bool:
        self.preset(model)
        return self.runner.unload(model)

    def pin(self, model: str, pinned: bool) -> None:
        self.preset(model)
        self.runner.pin(model, pinned)

    def close(self) -> None:
        self.runner.close()
        self.libraries.close()


def stamp(path) -> tuple[int, int]:
    """(modification time, size) of a file, (0, -1) when it is not there."""
    try:
        status = os.stat(path)
    except OSError:
        return 0, -1
    return status.st_mtime_ns, status.st_size


def known_parent(request: Request, library: Library | None, user: str | None) -> None:
    """A parent names one of the person's own images: the lineage the Library shows later is read from
    it, so a made-up id or someone else's is refused. (With no library, nothing is shown to anyone.)"""
    if request.parent is None or library is None or library.has(user, request.parent):
        return
    raise ValidationError(
        "parent",
        f"{request.parent!r} is not the id of one of your images; give an image_id from your results "
        "or from /library_search, or leave it empty to start a new lineage",
    )


def resize_notices(given: Request, checked: Request, max_pixels: int) -> tuple[str, ...]:
    """A sentence for each picture that validation scaled (into the pixel limit, or to the size the
    model works at): what it was, what it became, and why."""
    given_sizes = {}
    for name in (f.name for f in dataclasses.fields(given)):
        before, after = getattr(given, name), getattr(checked, name)
        if not isinstance(after, Image.Image) or not isinstance(before, (str, os.PathLike, Image.Image)):
            continue
        if isinstance(before, Image.Image):
            given_sizes[name] = before.size
        else:
            with Image.open(before) as picture:  # reads the header only
                given_sizes[name] = picture.size
    notices = []
    for name, size in given_sizes.items():
        after = getattr(checked, name)
        if sorted(size) == sorted(after.size):  # the same, or only turned upright
            continue
        if name == "mask":
            if size != given_sizes.get("image"):  # a mask painted on the given picture follows it unsaid
                notices.append(f"The mask ({size[0]}×{size[1]}) was scaled to the image's {after.width}×{after.height}.")
            continue
        pixels, now = size[0] * size[1], after.width * after.height
        way = "down" if pixels > now else "up"
        # Scaled into the server's limit (and no further), or fitted to the model's own size.
        by_limit = pixels > max_pixels and now > max_pixels // 2
        why = f"this server takes at most {max_pixels:,} pixels" if by_limit else "the size this model works at"
        what = {"image_a": "first image", "image_b": "second image"}.get(name, name)
        notice = f"The {what} ({size[0]}×{size[1]}) was scaled {way} to {after.width}×{after.height}: {why}"
        back = getattr(checked, "upscale", 1) if not by_limit else 1  # a model that cascades brings it back
        if back > 1:
            notice += f"; its ×{back} stage brings the results back to {after.width * back}×{after.height * back}"
        notices.append(notice + ".")
    return tuple(notices)
