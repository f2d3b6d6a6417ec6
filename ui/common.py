"""Widgets and plumbing every tab shares: sampler settings, the result panel, streaming, errors.

Gradio and PIL only; the back end is reached through the Studio alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from dataclasses import dataclass

import gradio as gr
from PIL import Image

from pipelines import Job, Result, Studio, ValidationError, friendly
from pipelines.recipe import RECIPE_KEY

GPU = "accelerator"  # one concurrency group for every event that runs a model: one job at a time
PREVIEW_EVERY = 0.25  # seconds between live previews sent to the browser


@dataclass
class Sampler:
    """Seed, steps, guidance and scheduler: the controls every generating tab has."""

    seed: gr.Number
    random_seed: gr.Button
    reuse_seed: gr.Button
    steps: gr.Slider
    guidance: gr.Slider
    scheduler: gr.Dropdown


def sampler_controls(studio: Studio, model: str, *, scheduler: str | None = None) -> Sampler:
    preset = studio.preset(model)
    scheduler = scheduler if scheduler in preset.schedulers else preset.scheduler
    with gr.Row(equal_height=True):
        seed = gr.Number(-1, label="Seed (−1 = random)", precision=0, minimum=-1, maximum=2**32 - 1, scale=3)
        random_seed = gr.Button("Random", size="sm", scale=0, min_width=80)
        reuse_seed = gr.Button("Reuse last", size="sm", scale=0, min_width=96)
    steps = gr.Slider(1, 150, preset.steps, step=1, label="Steps")
    guidance = gr.Slider(0, 30, preset.guidance, step=0.5, label="Guidance (how closely to follow the prompt)")
    choice = gr.Dropdown(list(preset.schedulers), value=scheduler, label="Scheduler")
    random_seed.click(lambda: -1, None, seed, api_visibility="private", queue=False)
    return Sampler(seed, random_seed, reuse_seed, steps, guidance, choice)


@dataclass
class ResultPanel:
    """A gallery of PNGs with recipes, the selected image, and buttons that send it to other tabs."""

    gallery: gr.Gallery
    recipes: gr.JSON
    selected: gr.State
    send: dict[str, gr.Button]


SEND_TARGETS = {"variations": "Variations", "inpaint": "Inpaint", "morph": "Morph"}


def result_panel(label: str = "Results", *, exclude: str = "") -> ResultPanel:
    gallery = gr.Gallery(
        label=label,
        format="png",  # lossless, and the recipe travels in the PNG's text chunks
        columns=2,
        height=520,
        object_fit="contain",
        buttons=["download", "fullscreen"],
        interactive=False,
        elem_classes="results",
    )
    with gr.Row():
        send = {
            key: gr.Button(f"Send to {name}", size="sm", variant="secondary")
            for key, name in SEND_TARGETS.items()
            if key != exclude
        }
    with gr.Accordion("Recipes", open=False):
        recipes = gr.JSON(label="Recipe of each image", value=[])
    selected = gr.State(0)

    def remember(evt: gr.SelectData) -> int:
        return evt.index

    gallery.select(remember, None, selected, api_visibility="private", queue=False)
    return ResultPanel(gallery, recipes, selected, send)


def gallery_items(result: Result) -> list[tuple[Image.Image, str]]:
    captions = []
    for recipe in result.recipes:
        if recipe.position is not None:
            captions.append(f"t = {recipe.position:.2f}")
        else:
            captions.append(f"seed {recipe.seed}" + (f" · seam {recipe.seam:.1f}" if recipe.seam is not None else ""))
    return list(zip(result.images, captions))


def recipes_json(result: Result) -> list[dict]:
    return [r.to_dict() for r in result.recipes]


def upload_path(value) -> str | None:
    """The server-side path of an uploaded file, as a path or as Gradio's unprocessed file data."""
    return value.get("path") if isinstance(value, dict) else value


def picked(gallery_value, recipes: list[dict] | None, index: int) -> tuple[Image.Image, str | None]:
    """The image selected in a gallery (or the first) and its id, for "Send to"."""
    if not gallery_value:
        raise gr.Error("Nothing to send yet: generate an image first.")
    index = index if 0 <= (index or 0) < len(gallery_value) else 0
    item = gallery_value[index]
    path = item[0] if isinstance(item, (list, tuple)) else item
    path = path.get("path") if isinstance(path, dict) else path
    image = path if isinstance(path, Image.Image) else Image.open(path)
    image.load()
    parent = (recipes or [{}])[index].get("image_id") if recipes and index < len(recipes) else None
    return image.convert("RGB"), parent


def preview_in_gallery(preview: Image.Image, n_outputs: int = 2) -> tuple:
    """Outputs for a live preview: shown in the result gallery, the other outputs left as they are."""
    return ([(preview, "preview")], *[gr.skip()] * (n_outputs - 1))


def stream(
    start: Callable[[], Job], progress: gr.Progress, show: Callable[[Image.Image], tuple] = preview_in_gallery
) -> Generator[tuple, None, Result]:
    """Start a job and yield `show(preview)` for its live previews; return its result.

    Validation errors come back before anything is queued; any failure becomes a readable message.
    When the browser goes away or Stop is pressed, Gradio closes this generator and the `finally`
    cancels the job, which ends within one denoising step.
    """
    try:
        job = start()
    except ValidationError as e:
        raise gr.Error(str(e), title="Check the settings") from None
    try:
        while True:
            event, ended = job.latest(PREVIEW_EVERY)
            if event is not None:
                if event.total:
                    progress((event.step, event.total), desc=event.message or "Sampling", unit="steps")
                else:
                    progress(0, desc=event.message)
                if event.preview is not None:
                    yield show(event.preview)
            if ended:
                break
        try:
            result = job.result()
        except Exception as e:
            raise gr.Error(friendly(e)) from None
        for notice in result.notices:
            gr.Warning(notice)
        return result
    finally:
        job.cancel()


def read_png_recipe(path: str | None) -> dict | None:
    """The recipe in an uploaded PNG, or None."""
    if not path:
        return None
    try:
        with Image.open(path) as image:
            text = image.info.get(RECIPE_KEY)
    except OSError:
        raise gr.Error("That file is not an image Atelier can read.") from None
    if not text:
        raise gr.Error("That image carries no Atelier recipe.")
    try:
        return json.loads(text)
    except ValueError:
        raise gr.Error("That image's recipe is damaged.") from None
