"""What every tab shares: its controls by name, the model they follow, the result panel, the events that
run a task (in the browser and over HTTP), and the streaming of a job into the page.

Gradio, PIL and NumPy only. From the back end, `ui/` imports the `pipelines` package itself and nothing
below it (tests/test_imports.py holds it to that): the Studio, request types, jobs, recipes, errors.
"""

from __future__ import annotations

import hashlib
import html
import inspect
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio.utils import get_upload_folder
from PIL import Image

from pipelines import (
    Limits,
    ModelPreset,
    ModelUnavailable,
    Progress,
    Recipe,
    Request,
    Result,
    Studio,
    Style,
    ValidationError,
    friendly,
    image_id,
    log_failure,
    read_recipe,
    write_whole,
)

from .controls import Declared, described

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


def sampler_controls(
    controls: Controls, preset: ModelPreset, limits: Limits, *, scheduler: str | None = None
) -> gr.Button:
    """Seed, steps, guidance and scheduler, the controls every generating tab has; the steps, guidance
    and scheduler follow the model. Returns the "Reuse last" button for the tab to wire."""
    declared = Declared(Request, limits, preset)

    def pick(p: ModelPreset, value: str | None) -> str:
        return next((s for s in (value, scheduler) if s in p.schedulers), p.scheduler)

    with gr.Row(equal_height=True):
        seed = controls.add("seed", declared("seed", scale=3))
        random_seed = gr.Button("Random", size="sm", scale=0, min_width=80)
        reuse_seed = gr.Button("Reuse last", size="sm", scale=0, min_width=96)
    controls.add("steps", declared("steps"), lambda p, v: gr.Slider(value=p.steps if v is None else v))
    controls.add(
        "guidance_scale", declared("guidance_scale"), lambda p, v: gr.Slider(value=p.guidance if v is None else v)
    )
    controls.add(
        "scheduler",
        declared("scheduler", value=pick(preset, None)),
        lambda p, v: gr.Dropdown(list(p.schedulers), value=pick(p, v)),
    )
    random_seed.click(lambda: -1, None, seed, api_visibility="private", queue=False)
    return reuse_seed


def negative_and_sampler(
    controls: Controls, preset: ModelPreset, limits: Limits, *, scheduler: str | None = None
) -> gr.Button:
    """What a tab's Advanced section starts with: the negative prompt and the sampler controls."""
    controls.add("negative_prompt", prompt_box("Negative prompt", "what to avoid", lines=1))
    return sampler_controls(controls, preset, limits, scheduler=scheduler)


def columns() -> tuple[gr.Column, gr.Column]:
    """A tab's two columns: its settings on the left, its results on the right. On a phone they stack,
    and the results come right after the main button, before the rest of the settings (see CSS)."""
    with gr.Row(equal_height=False, elem_classes="tab-body"):
        settings = gr.Column(scale=5, min_width=320, elem_classes="settings")
        return settings, gr.Column(scale=6, min_width=320, elem_classes="output")


def size_controls(controls: Controls, declared: Declared) -> None:
    """Width and height sliders within the model's limits, at its size; they follow the model."""
    for name in ("width", "height"):
        controls.add(
            name,
            declared(name),
            lambda p, v, name=name: gr.Slider(p.min_size, p.max_size, value=getattr(p, name) if v is None else v),
        )


def seed_caption(recipe: Recipe) -> str:
    return f"seed {recipe.seed}"


@dataclass
class ResultPanel:
    """A gallery of PNGs with recipes, the selected image, a status line (notices, "Stopped"), the live
    preview of a running job (apart from the gallery: the results stay until new ones replace them), a
    row for "Send to" buttons and "Restore settings" (from an Atelier PNG), and the offer to restore
    that shows when such a PNG is dropped on one of the tab's image areas."""

    gallery: gr.Gallery
    recipes: gr.JSON
    selected: gr.State
    send_row: gr.Row
    restore: gr.UploadButton  # also where an Atelier PNG dropped on a prompt goes (the page's script)
    status: gr.Markdown
    live: gr.Image
    offer: gr.Group  # "This picture was made in Atelier … [Restore its settings]", shown after such a drop
    offer_text: gr.Markdown
    offer_drop: gr.File
    offer_accept: gr.Button
    offer_dismiss: gr.Button
    caption: Callable[[Recipe], str] = seed_caption
    extra: list = field(default_factory=list)  # outputs besides the gallery (Morph's video and files)
    extra_values: Callable[[Result], tuple] = lambda result: ()

    @property
    def outputs(self) -> list:
        """What the HTTP API returns."""
        return [self.gallery, *self.extra, self.recipes]

    @property
    def page_outputs(self) -> list:
        """What a run updates in the page: the API's outputs, the status line and the live preview."""
        return [*self.outputs, self.status, self.live]

    def present(self, result: Result) -> tuple:
        # The files as saved (recipe inside, signed), so a download or an API client gets exactly those.
        pictures = [served(png, f"{r.image_id}.png") for png, r in zip(result.pngs, result.recipes)] or result.images
        items = [(picture, self.caption(recipe)) for picture, recipe in zip(pictures, result.recipes)]
        return (items, *self.extra_values(result), [r.to_dict() for r in result.recipes])

    def preview(self, picture: Image.Image) -> tuple:
        """A live preview in the API's gallery; the other outputs are left as they are."""
        return ([(picture, "preview")], *[gr.skip()] * (len(self.outputs) - 1))

    def show(self, result: Result) -> tuple:
        """The page after a run: the whole batch in a grid that fits it, what the person should know, no
        preview."""
        items, *rest = self.present(result)
        gallery = gr.Gallery(items, columns=grid_columns(len(items)), selected_index=None)
        return (gallery, *rest, notices_text(result.notices), gr.Image(None, visible=False))

    def show_preview(self, picture: Image.Image) -> tuple:
        """The page while a job runs: its newest preview; the previous results stay as they are."""
        return (*[gr.skip()] * len(self.outputs), gr.skip(), gr.Image(picture, visible=True))

    def starting(self) -> tuple:
        """The page as a run starts: last run's notices cleared."""
        return (*[gr.skip()] * len(self.outputs), "", gr.skip())

    def stopped(self) -> tuple:
        """Status and preview after Stop: the half-made picture goes, the previous results stay."""
        return "Stopped. The results shown are from the run before.", gr.Image(None, visible=False)

    def failed(self, message: str) -> tuple:
        """The page after a run that could not be made: the results stay as they were (no error over
        them), the half-made picture goes, and the status line keeps what went wrong."""
        return (*[gr.skip()] * len(self.outputs), f"**Not made:** {message}", gr.Image(None, visible=False))


def served(data: bytes, name: str) -> str:
    """An image file's bytes as a file in gradio's cache, for a gallery or an image to show as they are.
    Written once, whole: gradio saves a PIL image by rewriting the same cached file in place each time it
    is shown, and a browser still fetching that file meanwhile gets a short read."""
    path = Path(get_upload_folder()) / hashlib.sha256(data).hexdigest() / name
    if not path.exists():
        write_whole(path, data)
    return str(path)


def grid_columns(count: int) -> int:
    """Columns that show `count` images whole at a glance: 1, 2 (up to 4), 3 (up to 9), then 4."""
    return 1 if count <= 1 else 2 if count <= 4 else 3 if count <= 9 else 4


def notices_text(notices: tuple[str, ...]) -> str:
    return "\n".join(f"- {said(notice)}" for notice in notices)


def result_panel(label: str = "Results", caption: Callable[[Recipe], str] = seed_caption) -> ResultPanel:
    with gr.Group(visible=False, elem_classes="restore-offer") as offer:
        offer_text = gr.Markdown(padding=True)
        with gr.Row():
            offer_accept = gr.Button("Restore its settings", size="sm", variant="primary")
            offer_dismiss = gr.Button("No, thanks", size="sm")
    # Where the page's script puts a PNG given to one of the tab's image areas (an editor re-draws what it
    # is given, so its own value has lost the recipe): never shown.
    offer_drop = gr.File(file_types=[".png"], type="filepath", label="Dropped picture", elem_classes="offer-drop")
    status = gr.Markdown("", elem_classes="status")
    live = gr.Image(
        label="Preview (still forming)",
        show_label=False,
        visible=False,
        interactive=False,
        height=320,
        buttons=[],
        elem_classes="live-preview",
    )
    gallery = gr.Gallery(
        label=label,
        show_label=False,  # the label chip would sit over the first image
        format="png",  # lossless, and the recipe travels in the PNG's text chunks
        columns=2,
        height="auto",  # the whole batch shows, never a scroll box inside the page
        object_fit="contain",
        buttons=["download", "fullscreen"],
        interactive=False,
        elem_classes="results",
    )
    send_row = gr.Row(elem_classes="send-row")  # the page adds a "Send to" button for every other tab
    with gr.Row(elem_classes="restore-row"):
        restore = gr.UploadButton(
            "Restore settings from a PNG…",
            file_types=[".png"],
            type="filepath",
            size="sm",
            variant="secondary",
        )
    with gr.Accordion("Recipes", open=False):
        recipes = gr.JSON(label="Recipe of each image", value=[])
    selected = gr.State(0)

    def remember(evt: gr.SelectData) -> int:
        return evt.index

    gallery.select(remember, None, selected, api_visibility="private", queue=False)
    offers = dict(offer=offer, offer_text=offer_text, offer_drop=offer_drop, offer_accept=offer_accept,
                  offer_dismiss=offer_dismiss)
    return ResultPanel(gallery, recipes, selected, send_row, restore, status, live, caption=caption, **offers)


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


def slip(message: str, outputs) -> dict:
    """A person's slip (an action with nothing to act on) is a short notice that changes nothing else: no
    error over the components, nothing on the page cleared. (A notice reaches the page from queued events.)"""
    gr.Info(said(message))
    return {component: gr.skip() for component in outputs}


def upload_path(value) -> str | None:
    """The server-side path of an uploaded file, as a path or as Gradio's unprocessed file data."""
    return value.get("path") if isinstance(value, dict) else value


NOT_AN_IMAGE = "That file is not an image, or it is damaged."


def said(text: Any) -> str:
    """Text quoted in a message as itself: the page shows messages as HTML, where a prompt's or a LoRA
    tag's `<…>` would vanish as markup."""
    return html.escape(str(text), quote=False)


def refuse_non_image(value):
    """An upload that is not a picture (a renamed text file, a damaged PNG) is refused at once and
    cleared, rather than kept until Generate fails on it."""
    if not value:
        return gr.skip()
    try:
        with Image.open(upload_path(value)) as picture:
            picture.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        gr.Warning(NOT_AN_IMAGE)
        return None
    return gr.skip()


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
        raise gr.Error("Nothing to send yet: generate an image first.", print_exception=False)
    index = index if 0 <= (index or 0) < len(gallery_value) else 0
    item = gallery_value[index]
    path = item[0] if isinstance(item, (list, tuple)) else item
    path = path.get("path") if isinstance(path, dict) else path
    image = path if isinstance(path, Image.Image) else Image.open(path)
    image.load()
    parent = (recipes or [{}])[index].get("image_id") if recipes and index < len(recipes) else None
    return image.convert("RGB"), parent


def stream(
    start: Callable[[], Any],
    progress: gr.Progress,
    show: Callable[[Image.Image], tuple],
    *,
    labels: dict[str, str] | None = None,
    describe: Callable[[Progress], str] | None = None,
) -> Generator[tuple, None, Result]:
    """Start a job and yield `show(preview)` for its live previews; return its result.

    Validation errors come back before anything is queued, naming the field by its label where
    `labels` has one (the page) or by its parameter name (the HTTP API). Any failure becomes a readable
    message; a model that is not on the machine says how to fetch it, and that stays until closed.
    When the browser goes away or Stop is pressed, Gradio closes this generator and the `finally`
    cancels the job, which ends within one denoising step.
    """
    try:
        job = start()
    except ValidationError as e:
        raise gr.Error(field_message(e, labels or {}), title="Check the settings", print_exception=False) from None
    try:
        while True:
            event, ended = job.latest(POLL_SECONDS)
            if event is not None:
                if event.total:
                    text = event.message or (describe(event) if describe else "Sampling")
                    progress((event.step, event.total), desc=text, unit="steps")
                else:
                    progress(0, desc=event.message)
                if event.preview is not None:
                    yield show(event.preview)
            if ended:
                break
        try:
            return job.result()
        except ModelUnavailable as e:  # the command that fetches it must stay long enough to be copied
            raise gr.Error(said(e), duration=None, title="Model not on this machine", print_exception=False) from None
        except Exception as e:
            log_failure(e)  # once, with its own traceback where it is a bug
            raise gr.Error(said(friendly(e)), print_exception=False) from None
    finally:
        job.cancel()


def owner(request: gr.Request | None) -> dict[str, str | None]:
    """Who asks: the signed-in name (None without --auth) and the browser session (whose library in
    memory keeps the results in a public demo)."""
    return {"user": getattr(request, "username", None), "session": getattr(request, "session_hash", None)}


def field_message(error: ValidationError, labels: dict[str, str]) -> str:
    """A refusal as the person sees the field: "To: must not be empty", not "prompt_b: …"."""
    return said(f"{labels.get(error.field, error.field)}: {str(error).removeprefix(f'{error.field}: ')}")


def task_handler(
    studio: Studio,
    request_type: type[Request],
    panel: ResultPanel,
    prepare: Callable[[dict], dict] | None = None,
    *,
    page: Page | None = None,
):
    """The handler of a task's events: the named inputs become the request's fields (after `prepare`,
    which turns what a component hands over into what the request takes), the studio runs it, the
    results go to the panel. With `page`, it serves the page (labels in messages, a preview apart
    from the results, a status line); without, the HTTP API (parameter names, the API's outputs)."""

    def run(progress=gr.Progress(), request: gr.Request = None, **values):
        def start():
            return studio.submit(request_type(**(prepare(values) if prepare else values)), **owner(request))

        if page is None:
            result = yield from stream(start, progress, panel.preview)
            for notice in result.notices:
                gr.Warning(said(notice))
            yield panel.present(result)
            return
        yield panel.starting()
        describe = page.describe(values) if page.describe else None
        try:
            result = yield from stream(start, progress, panel.show_preview, labels=page.labels, describe=describe)
        except gr.Error as e:  # said in a message and the status line; an error event would blank the results
            title = "Not made" if e.title == "Error" else e.title
            gr.Warning(e.message, duration=e.duration, title=title)
            yield panel.failed(e.message)
            return
        yield panel.show(result)

    # Named and described after the task (its declared settings), for the API page and MCP tools; the
    # page's own event has a name of its own, so the endpoint keeps the task's.
    run.__name__ = run.__qualname__ = request_type.task if page is None else f"{request_type.task}_on_the_page"
    run.__doc__ = described(request_type)
    return run


@dataclass
class Page:
    """How a task's button event speaks to the person: each request field by the label they see, and
    (for a long job) what its progress means, given the request's values."""

    labels: dict[str, str]
    describe: Callable[[dict], Callable[[Progress], str]] | None = None


def labels_of(inputs: dict, **extra: str) -> dict[str, str]:
    """The label of each named input that has one, plus the labels of fields `prepare` makes."""
    return {name: c.label for name, c in inputs.items() if getattr(c, "label", None)} | extra


def api_endpoint(
    studio: Studio,
    request_type: type[Request],
    panel: ResultPanel,
    fields: dict,
    files: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    lineage: bool = True,
):
    """The task's HTTP endpoint, named after it: the request's fields as named parameters, images as
    plain files that the request opens itself (so a bad upload is refused with its name; the `optional`
    ones may be left out), and (with `lineage`) the image id the work starts from as `parent`. Values arrive
    unprocessed, so every refusal names its field (Gradio's own slider check would answer first, with
    only the bound)."""
    with gr.Row(visible=False):
        uploads = {name: gr.File(label=name) for name in files}
        parent = {"parent": gr.Textbox("", label="parent")} if lineage else {}
        button = gr.Button(request_type.task)
    inputs = {**uploads, **fields, **parent}
    prepare = (lambda values: {**values, **{name: upload_path(values[name]) for name in files}}) if files else None
    handler = task_handler(studio, request_type, panel, prepare)
    # A file input has no value to show as its default; the handler's signature gives those that may be
    # left out a default of None, which Gradio's API page and clients read.
    keyword = inspect.Parameter.KEYWORD_ONLY
    handler.__signature__ = inspect.Signature(
        [
            *list(inspect.signature(handler).parameters.values())[:2],  # progress, request
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
    labels: dict[str, str] | None = None,
    describe: Callable[[dict], Callable[[Progress], str]] | None = None,
    lineage: bool = True,
):
    """A task's two events: its button's (values as the page's components hand them over, through
    `prepare`; refusals name the inputs' labels, plus `labels` for fields `prepare` makes) and its HTTP
    endpoint (`api_fields`, plus `files`, and `parent` with `lineage`). Returns the button's event."""
    page = Page(labels_of(inputs, **(labels or {})), describe)
    event = button.click(
        task_handler(studio, request_type, panel, prepare, page=page),
        inputs_kwargs=inputs,
        outputs=panel.page_outputs,
        api_visibility="private",
        concurrency_id=GPU,
        show_progress_on=[panel.gallery],  # over the results, never over the preview being watched
    )
    api_endpoint(studio, request_type, panel, api_fields, files, optional, lineage)
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
    uploaded: Callable[[Any], Any] | None = None,
) -> Tab:
    """What every tab ends with: Stop cancels its events (the half-made preview goes, the previous
    results stay, and the status says so), "Reuse last" works, and where it takes an image (`source`),
    an upload starts a new lineage (then `uploaded` updates the source for the new picture) and "Send to"
    lands there with the image's id."""
    stop.click(panel.stopped, None, [panel.status, panel.live], cancels=events, api_visibility="private", queue=False)
    reuse_last_seed(reuse, controls, panel)
    if source is None:
        return Tab(title, controls, panel)
    lineage = source.upload(same_parent, [source, parent], parent, api_visibility="private", queue=False)
    if uploaded is not None:  # after, not beside: two events reading one upload race its file being written
        lineage.then(uploaded, source, source, api_visibility="private", queue=False)
    if isinstance(source, gr.Image):  # the image editor's own check is in the page's script
        # Queued, so that its warning reaches the page.
        source.upload(refuse_non_image, source, source, preprocess=False, api_visibility="private")
    receive = Receive([source, parent], lambda image, image_id: (accept(image), image_id))
    return Tab(title, controls, panel, receive)


def same_parent(value, parent: str | None) -> str | None:
    """After an upload: a new picture starts a new lineage (no parent), but the very image "Send to" put
    there keeps its id — an image editor reports the image it was handed as an upload too."""
    path = upload_path(value.get("background") if isinstance(value, dict) else value)
    if not parent or not path:
        return None
    with Image.open(path) as picture:
        return parent if image_id(picture) == parent else None


def source_image(label: str, height: int) -> gr.Image:
    """An image a task starts from, kept as a PNG file the request opens; a small one fills its frame."""
    look = dict(height=height, elem_classes=["source-image", "image-area"])
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
        elem_classes="image-area",
        **kw,
    )


def recipe_in(path: str | None, model_names: tuple[str, ...]) -> Recipe | None:
    """The recipe of a dropped picture when it is an Atelier PNG this server can restore; else None."""
    try:
        recipe = read_recipe(path) if path else None
    except OSError:
        return None
    return recipe if recipe is not None and recipe.model in model_names else None


def restore_values(path: str | None, model_names: tuple[str, ...]) -> Recipe | None:
    """The recipe in a dropped PNG, with a readable refusal for anything else."""
    if not path:
        return None
    try:
        recipe = read_recipe(path)
    except OSError:
        raise gr.Error("That file is not an image Atelier can read.", print_exception=False) from None
    if recipe is None:
        raise gr.Error("That image carries no Atelier recipe.", print_exception=False)
    if recipe.model not in model_names:
        offered = f"That image was made with {said(repr(recipe.model))}, which this server does not offer."
        raise gr.Error(offered, print_exception=False)
    return recipe


def recipe_updates(studio: Studio, picker, tabs: dict[str, Tab], tab: Tab, recipe: Recipe) -> dict:
    """What restoring a recipe into `tab` changes: the picker takes its model, every tab follows that
    model, and each of the tab's controls that the recipe has a value for takes it."""
    preset = studio.preset(recipe.model)
    updates = {picker: recipe.model}
    for other in tabs.values():
        updates.update(other.controls.follow(preset))
    updates.update(tab.controls.restore(preset, recipe.values()))
    return updates


def reuse_last_seed(button: gr.Button, controls: Controls, panel: ResultPanel) -> None:
    """ "Reuse last" puts the seed of the panel's first result into the seed box."""

    seed = controls.fields["seed"]

    def reuse(recipes: list | None):
        if not recipes:
            return slip("No image yet whose seed could be reused.", [seed])
        return recipes[0]["seed"]

    button.click(reuse, panel.recipes, seed, api_visibility="private")


def prompt_box(label: str = "Prompt", placeholder: str = "", *, required: bool = False, **kw) -> gr.Textbox:
    """A text box for a prompt; a required one has no default in the HTTP API. No `max_length`: the browser
    would cut a long paste without a word; the server refuses it, saying how long it is, and the text stays."""
    return gr.Textbox(None if required else "", label=label, placeholder=placeholder, **{"lines": 2, **kw})


def run_buttons(task: str, label: str) -> tuple[gr.Button, gr.Button]:
    """The tab's main button (Ctrl+Enter presses it) and its Stop (Esc)."""
    with gr.Row(elem_classes="run-row"):
        go = gr.Button(label, variant="primary", elem_id=f"{task}-generate", scale=3)
        stop = gr.Button("Stop", variant="stop", elem_id=f"{task}-stop", scale=1)
    return go, stop


LORA_HINT = "Each picked LoRA gets a weight, −2…2; in a prompt, <lora:name:weight> does the same."


def picked_loras(rows) -> list[list]:
    """The picked LoRAs as [name, weight] rows, whatever shape they came in (a recipe's, a style's)."""
    rows = rows.get("data", []) if isinstance(rows, dict) else rows or []
    return [[str(r[0]), r[1] if len(r) > 1 and isinstance(r[1], (int, float)) else 1.0]
            for r in rows if isinstance(r, (list, tuple)) and r and r[0]]


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
        gr.Dropdown(list(studio.loras(preset.name)), value=None, label="Add a LoRA", info=LORA_HINT,
                    elem_classes="lora-adder"),
        lambda p, v: gr.Dropdown(choices=list(studio.loras(p.name)), value=None),
    )
    # The picked LoRAs, [[name, weight], …]: the request's field (and the API's), shown as a row each below.
    loras = controls.add("loras", gr.JSON([], visible=False, label="LoRAs"))

    @gr.render(inputs=loras)
    def lora_rows(rows):
        for lora, weight in picked_loras(rows):
            with gr.Row(equal_height=True, elem_classes="lora-row", key=f"lora-row-{lora}"):
                slider = gr.Slider(-2, 2, weight, step=0.05, label=lora, info="weight (0 = off)", interactive=True, scale=5,
                                   key=f"lora-weight-{lora}")
                remove = gr.Button("Remove", size="sm", scale=0, min_width=90, elem_classes="lora-remove",
                                   key=f"lora-remove-{lora}")
            # `release`: the end of a drag or a typed number, not every step of the drag.
            slider.release(lambda rows, w, lora=lora: [[n, w if n == lora else v] for n, v in picked_loras(rows)],
                           [loras, slider], loras, api_visibility="private", queue=False)
            remove.click(lambda rows, lora=lora: [[n, v] for n, v in picked_loras(rows) if n != lora],
                         loras, loras, api_visibility="private", queue=False)

    with gr.Row(equal_height=True):
        name = gr.Textbox(label="Save these settings as a style", placeholder="a name", scale=3, elem_classes="style-name")
        save = gr.Button("Save style", size="sm", scale=1, elem_classes="style-save")

    def add(rows, lora):
        rows = picked_loras(rows)
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
            gr.Info(said(f"{', '.join(names)} was saved with the model {settings['model']!r}: choose it above to match."))
        updates = {component: gr.skip() for component in settable.values()}  # an empty dict reads as one value
        return {**updates, **{settable[n]: v for n, v in settings.items() if n in settable}}

    styles.input(pick, [styles, model], list(settable.values()), api_visibility="private")

    saved_from = {n: c for n, c in controls.fields.items() if n in ("prompt", "negative_prompt", *STYLE_SETTINGS)}

    def save_style(style_name: str, model_name: str, *values) -> dict:
        given = dict(zip(saved_from, values))
        settings = {n: v for n, v in given.items() if n in STYLE_SETTINGS}
        settings["loras"] = picked_loras(settings.get("loras"))
        try:
            style = Style.from_dict(
                {"name": style_name, "prompt": given.get("prompt") or "{prompt}",
                 "negative_prompt": given.get("negative_prompt") or "", "settings": {"model": model_name, **settings}}
            )
            studio.styles.save(style)
        except ValidationError as e:
            raise gr.Error(said(e), print_exception=False) from None
        gr.Info(said(f"Style {style.name!r} saved."))
        return gr.Dropdown(choices=list(studio.styles_for(model_name)))

    controls.style_saved = save.click(
        save_style, [name, model, *saved_from.values()], styles, api_visibility="private"
    )
