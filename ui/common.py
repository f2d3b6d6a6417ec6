"""What every tab shares: its controls by name, the model they follow, the result panel, the events that
run a task (in the browser and over HTTP), and the streaming of a job into the page.

Gradio, PIL and NumPy only. From the back end, `ui/` imports the `pipelines` package itself and nothing
below it (tests/test_imports.py holds it to that): the Studio, request types, jobs, recipes, errors.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from pipelines import ModelPreset, Recipe, Request, Result, Studio, Style, ValidationError, friendly, read_recipe

GPU = "accelerator"  # one concurrency group for every event that runs a model: one job at a time
POLL_SECONDS = 0.25  # how often the handler looks for a job's newest progress and preview
Follow = Callable[[ModelPreset, Any], Any]  # (the model chosen, a value to keep or None) → the control's update


class Controls:
    """A tab's settings, each under the name of the request field it fills: the event that runs the
    task passes them by name, restoring a recipe fills them by name, and those that depend on the model
    say how they follow it."""

    def __init__(self) -> None:
        self.fields: dict[str, gr.components.Component] = {}
        self.helpers: dict[str, gr.components.Component] = {}  # follow the model but fill no field (a LoRA adder)
        self._follow: dict[str, Follow] = {}
        self.style_saved = None  # the event of "Save style", for the page to refresh every tab's styles after it

    def add(self, name: str, component, follow: Follow | None = None):
        self.fields[name] = component
        if follow is not None:
            self._follow[name] = follow
        return component

    def helper(self, name: str, component, follow: Follow):
        """A control that follows the model without being a request field."""
        self.helpers[name] = component
        self._follow[name] = follow
        return component

    def _component(self, name: str):
        return self.fields.get(name) or self.helpers[name]

    @property
    def following(self) -> list:
        return [self._component(name) for name in self._follow]

    def follow(self, preset: ModelPreset, values: dict[str, Any] | None = None) -> dict:
        """Updates of the model-dependent controls for `preset`: its limits, choices and defaults, or
        the given values where they fit."""
        values = values or {}
        return {self._component(name): follow(preset, values.get(name)) for name, follow in self._follow.items()}

    def restore(self, preset: ModelPreset, values: dict[str, Any]) -> dict:
        """Updates that put a recipe's values into every control that has a field of that name."""
        updates = {component: values[name] for name, component in self.fields.items() if name in values}
        return {**updates, **self.follow(preset, values)}


def sampler_controls(controls: Controls, preset: ModelPreset, *, scheduler: str | None = None) -> gr.Button:
    """Seed, steps, guidance and scheduler, the controls every generating tab has; the steps, guidance
    and scheduler follow the model. Returns the "Reuse last" button for the tab to wire."""

    def pick(p: ModelPreset, value: str | None) -> str:
        return next((s for s in (value, scheduler) if s in p.schedulers), p.scheduler)

    with gr.Row(equal_height=True):
        seed = controls.add(
            "seed", gr.Number(-1, label="Seed (−1 = random)", precision=0, minimum=-1, maximum=2**32 - 1, scale=3)
        )
        random_seed = gr.Button("Random", size="sm", scale=0, min_width=80)
        reuse_seed = gr.Button("Reuse last", size="sm", scale=0, min_width=96)
    controls.add(
        "steps",
        gr.Slider(1, 150, preset.steps, step=1, label="Steps"),
        lambda p, v: gr.Slider(value=p.steps if v is None else v),
    )
    controls.add(
        "guidance_scale",
        gr.Slider(0, 30, preset.guidance, step=0.5, label="Guidance (how closely to follow the prompt)"),
        lambda p, v: gr.Slider(value=p.guidance if v is None else v),
    )
    controls.add(
        "scheduler",
        gr.Dropdown(list(preset.schedulers), value=pick(preset, None), label="Scheduler"),
        lambda p, v: gr.Dropdown(list(p.schedulers), value=pick(p, v)),
    )
    random_seed.click(lambda: -1, None, seed, api_visibility="private", queue=False)
    return reuse_seed


def negative_and_sampler(controls: Controls, preset: ModelPreset, *, scheduler: str | None = None) -> gr.Button:
    """What a tab's Advanced section starts with: the negative prompt and the sampler controls."""
    controls.add("negative_prompt", prompt_box("Negative prompt", "what to avoid", lines=1))
    return sampler_controls(controls, preset, scheduler=scheduler)


def choices(labels: dict[str, str], values: tuple[str, ...], **kw) -> gr.Radio:
    """A radio of a request's choices (`values`), each shown with its label, the first picked."""
    return gr.Radio([(labels[v], v) for v in values], value=values[0], **kw)


def columns() -> tuple[gr.Column, gr.Column]:
    """A tab's two columns: its settings on the left, its results on the right (stacked on a phone)."""
    with gr.Row(equal_height=False):
        return gr.Column(scale=5, min_width=320), gr.Column(scale=6, min_width=320)


def size_controls(controls: Controls, preset: ModelPreset) -> None:
    """Width and height sliders within the model's limits, at its size; they follow the model."""
    for name in ("width", "height"):
        controls.add(
            name,
            gr.Slider(preset.min_size, preset.max_size, getattr(preset, name), step=8, label=name.title()),
            lambda p, v, name=name: gr.Slider(p.min_size, p.max_size, value=getattr(p, name) if v is None else v),
        )


def seed_caption(recipe: Recipe) -> str:
    return f"seed {recipe.seed}"


@dataclass
class ResultPanel:
    """A gallery of PNGs with recipes, the selected image, a row for "Send to" buttons, and a drop zone
    that restores the tab's settings from an Atelier PNG."""

    gallery: gr.Gallery
    recipes: gr.JSON
    selected: gr.State
    send_row: gr.Row
    restore: gr.File
    caption: Callable[[Recipe], str] = seed_caption
    extra: list = field(default_factory=list)  # outputs besides the gallery (Morph's video and files)
    extra_values: Callable[[Result], tuple] = lambda result: ()

    @property
    def outputs(self) -> list:
        return [self.gallery, *self.extra, self.recipes]

    def present(self, result: Result) -> tuple:
        items = [(image, self.caption(recipe)) for image, recipe in zip(result.images, result.recipes)]
        return (items, *self.extra_values(result), [r.to_dict() for r in result.recipes])

    def preview(self, picture: Image.Image) -> tuple:
        """A live preview in the gallery; the other outputs are left as they are."""
        return ([(picture, "preview")], *[gr.skip()] * (len(self.outputs) - 1))


def result_panel(label: str = "Results", caption: Callable[[Recipe], str] = seed_caption) -> ResultPanel:
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
    send_row = gr.Row()  # the page adds a "Send to" button for every tab that takes an image
    with gr.Accordion("Recipes", open=False):
        recipes = gr.JSON(label="Recipe of each image", value=[])
        restore = gr.File(label="Restore settings from an Atelier PNG", file_types=[".png"], type="filepath")
    selected = gr.State(0)

    def remember(evt: gr.SelectData) -> int:
        return evt.index

    gallery.select(remember, None, selected, api_visibility="private", queue=False)
    return ResultPanel(gallery, recipes, selected, send_row, restore, caption)


@dataclass
class Receive:
    """Where an image sent from another tab lands: `accept(image, image_id)` gives the values of `outputs`."""

    outputs: list
    accept: Callable[[Image.Image, str | None], tuple]


@dataclass
class Tab:
    """What the page needs of a tab once it is built."""

    title: str
    controls: Controls
    results: ResultPanel
    receive: Receive | None = None


def upload_path(value) -> str | None:
    """The server-side path of an uploaded file, as a path or as Gradio's unprocessed file data."""
    return value.get("path") if isinstance(value, dict) else value


def editor_value(image: Image.Image) -> dict:
    """A fresh image-editor value: the image with no painted layers, so no stale strokes survive."""
    return {"background": image, "layers": [], "composite": image}


def layers_mask(layers: list | None) -> Image.Image | None:
    """An image editor's painted layers (PNG paths) → an L mask: the union of their alpha."""
    painted = None
    for layer in layers or []:
        with Image.open(layer) as picture:
            alpha = np.asarray(picture.convert("RGBA").getchannel("A")) > 0
        painted = alpha if painted is None else painted | alpha
    return None if painted is None else Image.fromarray((painted * 255).astype(np.uint8), "L")


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


def stream(
    start: Callable[[], Any], progress: gr.Progress, show: Callable[[Image.Image], tuple]
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
            event, ended = job.latest(POLL_SECONDS)
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


def task_handler(
    studio: Studio, request_type: type[Request], panel: ResultPanel, prepare: Callable[[dict], dict] | None = None
):
    """The handler of a task's events: the named inputs become the request's fields (after `prepare`,
    which turns what a component hands over into what the request takes), the studio runs it, the
    results go to the panel."""

    def run(progress=gr.Progress(), **values):
        def start():
            return studio.submit(request_type(**(prepare(values) if prepare else values)))

        result = yield from stream(start, progress, panel.preview)
        yield panel.present(result)

    run.__doc__ = (request_type.__doc__ or "").strip() or f"Run the {request_type.task} task."
    return run


def api_endpoint(
    studio: Studio,
    request_type: type[Request],
    panel: ResultPanel,
    fields: dict,
    files: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
):
    """The task's HTTP endpoint, named after it: the request's fields as named parameters, images as
    plain files that the request opens itself (so a bad upload is refused with its name; the `optional`
    ones may be left out), and the image id the work starts from as `parent`. Values arrive
    unprocessed, so every refusal names its field (Gradio's own slider check would answer first, with
    only the bound)."""
    with gr.Row(visible=False):
        uploads = {name: gr.File(label=name) for name in files}
        parent = gr.Textbox("", label="parent")
        button = gr.Button(request_type.task)
    inputs = {**uploads, **fields, "parent": parent}
    prepare = (lambda values: {**values, **{name: upload_path(values[name]) for name in files}}) if files else None
    handler = task_handler(studio, request_type, panel, prepare)
    # A file input has no value to show as its default; the handler's signature gives those that may be
    # left out a default of None, which Gradio's API page and clients read.
    keyword = inspect.Parameter.KEYWORD_ONLY
    handler.__signature__ = inspect.Signature(
        [
            *list(inspect.signature(handler).parameters.values())[:1],
            *(inspect.Parameter(name, keyword, default=None) for name in optional),
            inspect.Parameter("values", inspect.Parameter.VAR_KEYWORD),
        ]
    )
    return button.click(
        handler,
        inputs_kwargs=inputs,
        outputs=panel.outputs,
        api_name=request_type.task,
        concurrency_id=GPU,
        preprocess=False,
    )


def task_events(
    studio: Studio,
    request_type: type[Request],
    panel: ResultPanel,
    button: gr.Button,
    inputs: dict,
    api_fields: dict,
    *,
    prepare: Callable[[dict], dict] | None = None,
    files: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
):
    """A task's two events: its button's (values as the page's components hand them over, through
    `prepare`) and its HTTP endpoint (`api_fields`, plus `files`). Returns the button's event."""
    event = button.click(
        task_handler(studio, request_type, panel, prepare),
        inputs_kwargs=inputs,
        outputs=panel.outputs,
        api_visibility="private",
        concurrency_id=GPU,
    )
    api_endpoint(studio, request_type, panel, api_fields, files, optional)
    return event


def finish_tab(
    title: str,
    controls: Controls,
    panel: ResultPanel,
    *,
    stop: gr.Button,
    events: list,
    reuse: gr.Button,
    source=None,
    parent: gr.State | None = None,
    accept: Callable[[Image.Image], Any] = lambda image: image,
) -> Tab:
    """What every tab ends with: Stop cancels its events, "Reuse last" works, and where it takes an
    image (`source`), an upload starts a new lineage and "Send to" lands there with the image's id."""
    stop.click(None, None, None, cancels=events, api_visibility="private", queue=False)
    reuse_last_seed(reuse, controls, panel)
    if source is None:
        return Tab(title, controls, panel)
    source.upload(lambda: None, None, parent, api_visibility="private", queue=False)  # a new upload has no parent
    return Tab(title, controls, panel, Receive([source, parent], lambda image, image_id: (accept(image), image_id)))


def source_image(label: str, height: int) -> gr.Image:
    """An image a task starts from, kept as a PNG file the request opens; a small one fills its frame."""
    look = dict(height=height, elem_classes="source-image")
    return gr.Image(label=label, type="filepath", format="png", sources=["upload", "clipboard"], **look)


def image_editor(editor: type = gr.ImageEditor, **kw):
    """An image editor whose value comes as PNG files, which the request opens like any upload
    (checked, made RGB, scaled into the limit); no crop or resize tools, one layer."""
    return editor(
        type="filepath",
        format="png",
        layers=False,
        sources=["upload", "clipboard"],
        eraser=gr.Eraser(default_size="auto"),
        transforms=(),
        height=420,
        **kw,
    )


def restore_values(path: str | None, model_names: tuple[str, ...]) -> Recipe | None:
    """The recipe in a dropped PNG, with a readable refusal for anything else."""
    if not path:
        return None
    try:
        recipe = read_recipe(path)
    except OSError:
        raise gr.Error("That file is not an image Atelier can read.") from None
    if recipe is None:
        raise gr.Error("That image carries no Atelier recipe.")
    if recipe.model not in model_names:
        raise gr.Error(f"That image was made with {recipe.model!r}, which this server does not offer.")
    return recipe


def reuse_last_seed(button: gr.Button, controls: Controls, panel: ResultPanel) -> None:
    """ "Reuse last" puts the seed of the panel's first result into the seed box."""

    def reuse(recipes: list | None):
        if not recipes:
            raise gr.Error("No image yet whose seed could be reused.")
        return recipes[0]["seed"]

    button.click(reuse, panel.recipes, controls.fields["seed"], api_visibility="private", queue=False)


def prompt_box(label: str = "Prompt", placeholder: str = "", *, required: bool = False, **kw) -> gr.Textbox:
    """A text box for a prompt; a required one has no default in the HTTP API."""
    return gr.Textbox(
        None if required else "", label=label, placeholder=placeholder, max_length=2000, **{"lines": 2, **kw}
    )


def run_buttons(task: str, label: str) -> tuple[gr.Button, gr.Button]:
    """The tab's main button (Ctrl+Enter presses it) and its Stop (Esc)."""
    with gr.Row():
        go = gr.Button(label, variant="primary", elem_id=f"{task}-generate", scale=3)
        stop = gr.Button("Stop", variant="stop", elem_id=f"{task}-stop", scale=1)
    return go, stop


STYLE_SETTINGS = ("scheduler", "steps", "guidance_scale", "width", "height", "loras")  # what a style may set in a tab


def creative_controls(controls: Controls, studio: Studio, model: gr.Dropdown) -> None:
    """Styles and LoRAs, the same in every tab. Picking a style puts its settings into the tab's controls
    (its template wraps the prompt when the task runs); each LoRA has its own weight; the tab's settings
    can be saved as a style. Choices follow the model: only the LoRAs that fit it are offered."""
    preset = studio.preset(model.value)

    def style_names(p: ModelPreset) -> list[str]:
        return list(studio.styles_for(p.name))

    styles = controls.add(
        "styles",
        gr.Dropdown(style_names(preset), value=[], multiselect=True, label="Styles", elem_classes="styles-picker"),
        lambda p, v: gr.Dropdown(choices=style_names(p), value=[s for s in (v or []) if s in style_names(p)]),
    )
    adder = controls.helper(
        "add_lora",
        gr.Dropdown(list(studio.loras(preset.name)), value=None, label="Add a LoRA", elem_classes="lora-adder"),
        lambda p, v: gr.Dropdown(choices=list(studio.loras(p.name)), value=None),
    )
    loras = controls.add(
        "loras",
        gr.Dataframe(
            value=[],
            headers=["LoRA", "weight"],
            datatype=["str", "number"],
            col_count=(2, "fixed"),
            row_count=(0, "dynamic"),
            type="array",
            label="LoRAs: a weight each, −2…2 (or <lora:name:weight> in the prompt)",
            elem_classes="lora-table",
        ),
    )
    with gr.Row(equal_height=True):
        name = gr.Textbox(label="Save these settings as a style", placeholder="a name", scale=3, elem_classes="style-name")
        save = gr.Button("Save style", size="sm", scale=1, elem_classes="style-save")

    def add(rows, lora):
        rows = [list(r) for r in rows or [] if r and r[0]]
        if lora and lora not in [r[0] for r in rows]:
            rows.append([lora, 1.0])
        return rows, None

    adder.input(add, [loras, adder], [loras, adder], api_visibility="private", queue=False)

    settable = {n: c for n, c in controls.fields.items() if n in STYLE_SETTINGS}

    def pick(names: list[str], model_name: str) -> dict:
        offered = studio.styles_for(model_name)
        settings: dict[str, Any] = {}
        for style in names or []:
            if style in offered:
                settings.update(offered[style].settings)
        if settings.get("model") and settings["model"] != model_name and settings["model"] in studio.model_names:
            gr.Info(f"{', '.join(names)} was saved with the model {settings['model']!r}: choose it above to match.")
        updates = {component: gr.skip() for component in settable.values()}  # an empty dict reads as one value
        return {**updates, **{settable[n]: v for n, v in settings.items() if n in settable}}

    styles.input(pick, [styles, model], list(settable.values()), api_visibility="private", queue=False)

    saved_from = {n: c for n, c in controls.fields.items() if n in ("prompt", "negative_prompt", *STYLE_SETTINGS)}

    def save_style(style_name: str, model_name: str, *values) -> dict:
        given = dict(zip(saved_from, values))
        settings = {n: v for n, v in given.items() if n in STYLE_SETTINGS}
        settings["loras"] = [list(r) for r in settings.get("loras") or [] if r and r[0]]
        try:
            style = Style.from_dict(
                {"name": style_name, "prompt": given.get("prompt") or "{prompt}",
                 "negative_prompt": given.get("negative_prompt") or "", "settings": {"model": model_name, **settings}}
            )
            studio.styles.save(style)
        except ValidationError as e:
            raise gr.Error(str(e)) from None
        gr.Info(f"Style {style.name!r} saved.")
        return gr.Dropdown(choices=list(studio.styles_for(model_name)))

    controls.style_saved = save.click(
        save_style, [name, model, *saved_from.values()], styles, api_visibility="private", queue=False
    )
