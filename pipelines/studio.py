"""Studio: the front, the one object the UI talks to.

It knows no task by name. For any request it validates (before anything is queued) against the limits
of the model asked for, draws the seeds, hands the task's name, the request and the seeds to the runner,
and turns the images that come back into results: a recipe per image (the settings every task shares,
plus the task's own), written into the PNG and saved to the outputs folder, and whatever files the task
makes of its images. Importing this module loads no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from .errors import ValidationError
from .jobs import Job, Result
from .outputs import OutputStore, Scratch
from .recipe import Recipe, attach, image_id
from .registry import ModelPreset, Registry
from .requests import Limits, Request
from .runner import ModelState, Output, Runner, Task
from .styles import Style, StyleBook
from .tasks import TASKS


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
    ):
        self.runner = runner
        self.registry = registry
        self.outputs = OutputStore(outputs) if outputs else None  # "" saves nothing (a public demo)
        self.max_pixels = max_pixels  # largest image a request may ask for or upload
        self.max_images = max_images  # most images in one request
        self.styles = styles or StyleBook(None)  # the person's saved styles (none kept without a file)
        self._scratch = Scratch()

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
        preset = self.preset(model)
        return Limits(
            min_size=preset.min_size,
            max_size=preset.max_size,
            native_size=preset.native_size,
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
        self.preset(model)
        return tuple(sorted(name for name, why in self.registry.lora_refusals(model).items() if not why))

    def styles_for(self, model: str) -> dict[str, Style]:
        """The styles offered with `model`: those its folder ships and the person's own."""
        return self.styles.for_model(self.preset(model))

    # -- work -----------------------------------------------------------------------------------------

    def submit(self, request: Request) -> Job[Result]:
        """Validate `request` (a ValidationError names the field), start its task on the runner, and
        return the job: its events stream progress, its result has the images with their recipes."""
        task = TASKS.of(request)
        request = request.validated(self.limits(request.model))
        seeds = request.draw_seeds()
        return self.runner.submit(task.name, request, seeds).then(partial(self._finish, task, request))

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

    def _finish(self, task: Task, request: Request, output: Output) -> Result:
        """Recipes into the images, the images into the outputs folder, the task's files beside them."""
        recipes = [self._recipe(request, image, output, i) for i, image in enumerate(output.images)]
        for image, recipe in zip(output.images, recipes):
            attach(image, recipe)
            if self.outputs is not None:
                self.outputs.save(image, recipe)
        files = task.files(request, output.images, self._scratch.folder()) if task.files else {}
        return Result(images=output.images, recipes=recipes, notices=output.notices, files=files)

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
