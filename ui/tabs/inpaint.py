"""Inpaint: paint a mask over an image, describe what goes there; the rest stays exactly as it was.
Outpainting (its own task and endpoint) extends the canvas and fills the new border the same way, with
the same controls."""

from __future__ import annotations

from functools import partial

import gradio as gr
from PIL import Image

from pipelines import InpaintRequest, OutpaintRequest, Studio

from ..controls import Controls, Declared, columns, negative_and_sampler, prompt_box, run_buttons
from ..creative import creative_controls
from ..events import Tab, finish_tab, task_events
from ..images import editor_value, image_editor, layers_mask, upload_path
from ..results import result_panel

TITLE = "Inpaint"
FILL_LABELS = {"original": "Original", "fill": "Fill from surroundings", "noise": "Noise"}
SIDES = ("left", "right", "top", "bottom")
BRUSH_SHARE = 32  # the default brush's radius is this fraction of the picture's shorter side: 2 px on 64², 16 on 512²


def brush(size: int | str = "auto") -> gr.Brush:
    """A translucent brush: the image shows through the mask being painted."""
    return gr.Brush(default_size=size, colors=[("#ff3b8b", 0.55)], color_mode="fixed")


def brush_for(size: tuple[int, int]) -> gr.Brush:
    """The brush sized to a picture (Gradio's "auto" is 25 px whatever its size: 40 % of a 64² one)."""
    return brush(max(2, round(min(size) / BRUSH_SHARE)))


def sized_brush(value, parent: str | None) -> gr.ImageMask:
    """After an upload: the brush for the picture now in the editor. A picture "Send to" put there (the
    editor reports it as an upload too, and its id is kept) already has its brush: updating the editor again
    would land after the person's first strokes and reset its tool."""
    path = upload_path((value or {}).get("background"))
    if not path or parent:
        return gr.skip()
    try:
        with Image.open(path) as picture:
            return gr.ImageMask(brush=brush_for(picture.size))
    except OSError:
        return gr.skip()


def receive(image: Image.Image) -> gr.ImageMask:
    """An image sent here: in the editor with no strokes, and the brush sized to it."""
    return gr.ImageMask(editor_value(image), brush=brush_for(image.size), format="png")


def from_editor(values: dict, *, with_mask: bool) -> dict:
    """The editor's value (image and painted layers as files) → the request's image (and mask)."""
    editor = values.pop("editor") or {}
    if not editor.get("background"):
        raise gr.Error(
            "Upload an image first, then paint over the area to repaint." if with_mask else "Upload an image first.",
            print_exception=False,
        )
    mask = {"mask": layers_mask(editor.get("layers"))} if with_mask else {}
    return {**values, "image": editor["background"], **mask}


EDGES = {"clean": "clean edge", "blended": "blended edge", "visible": "edge shows"}


def seed_and_seam(recipe) -> str:
    """The seed and, in words, how the repainted area meets the rest (recipes before "edge" have none)."""
    edge = EDGES.get(recipe.settings.get("edge"))
    return f"seed {recipe.seed} · {edge}" if edge else f"seed {recipe.seed}"


def render(studio: Studio, model: gr.Dropdown) -> Tab:
    preset, limits = studio.preset(model.value), studio.limits(model.value)
    declared, sides = Declared(InpaintRequest, limits, preset), Declared(OutpaintRequest, limits, preset)
    controls, parent = Controls(), gr.State(None)
    settings, output = columns()
    with settings:
        editor = image_editor(
            gr.ImageMask,
            label="Image — paint over what to repaint",
            image_mode="RGBA",  # the painted layers' alpha is the mask: RGB would drop it
            brush=brush(),
            elem_id="inpaint-editor",
        )
        controls.add("prompt", prompt_box("What goes there", "a red circle", required=True))
        generate, stop = run_buttons("inpaint", "Inpaint")
        with gr.Row():
            controls.add("strength", declared("strength"))
            controls.add("num_images", declared("num_images"))
        with gr.Accordion("Mask and area", open=False):
            with gr.Row():
                controls.add("mask_blur", declared("mask_blur"))
                controls.add("grow", declared("grow"))
            with gr.Row():
                controls.add("only_masked", declared("only_masked"))
                controls.add("padding", declared("padding"))
            controls.add("fill", declared("fill", labels=FILL_LABELS))
            controls.add("color_correction", declared("color_correction"))
        with gr.Accordion("Outpaint", open=False):
            gr.Markdown("Extend the canvas; the new border is filled and the original kept exactly.")
            for pair in (SIDES[:2], SIDES[2:]):  # two a row: four side by side wrapped unevenly
                with gr.Row():
                    for side in pair:
                        controls.add(side, sides(side))
            outpaint_button = gr.Button("Outpaint", variant="secondary", elem_id="outpaint-generate")
        with gr.Accordion("Advanced", open=False):
            reuse = negative_and_sampler(controls, preset, limits)
            creative_controls(controls, studio, model)
    with output:
        results = result_panel("Inpainted", caption=seed_and_seam)

    # Inpaint and Outpaint share every control but the mask's growth and the sides.
    shared = {name: c for name, c in controls.fields.items() if name not in ("grow", *SIDES)} | {"model": model}
    inpaint_fields = {**shared, "grow": controls.fields["grow"]}
    outpaint_fields = {**shared, **{side: controls.fields[side] for side in SIDES}}
    # The HTTP API takes a plain image (and, to inpaint, an L-mode mask, white = repaint): scripts need no editor.
    events = []
    for button, request_type, fields, with_mask, files in (
        (generate, InpaintRequest, inpaint_fields, True, ("image", "mask")),
        (outpaint_button, OutpaintRequest, outpaint_fields, False, ("image",)),
    ):
        inputs = {"editor": editor, **fields, "parent": parent}
        prepare = partial(from_editor, with_mask=with_mask)
        labels = {"image": "Image", "mask": "Mask"}  # what the editor's value becomes
        event = task_events(
            studio, request_type, results, button, inputs, fields, prepare=prepare, files=files, labels=labels
        )
        events.append(event)
    source = dict(source=editor, parent=parent, accept=receive, uploaded=sized_brush)
    return finish_tab(TITLE, controls, results, stop=stop, events=events, reuse=reuse, **source)
