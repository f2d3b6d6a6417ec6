"""Sketch: draw rough coloured shapes (on a blank canvas or over a picture), describe the picture; the
drawing becomes its layout."""

from __future__ import annotations

import gradio as gr

from pipelines import SketchRequest, Studio

from ..controls import Controls, Declared, columns, negative_and_sampler, prompt_box, run_buttons
from ..creative import creative_controls
from ..events import Tab, finish_tab, task_events
from ..images import editor_value, image_editor
from ..results import result_panel

TITLE = "Sketch"
INKS = ["#e11e1e", "#f58c14", "#f0dc1e", "#1eaa3c", "#2350e6", "#912dc8", "#000000", "#808080", "#ffffff"]


def from_canvas(values: dict) -> dict:
    """The canvas's value → the drawing as one picture (strokes over the background, on white)."""
    canvas = values.pop("canvas") or {}
    return {**values, "sketch": canvas.get("composite")}


def render(studio: Studio, model: gr.Dropdown) -> Tab:
    preset, limits = studio.preset(model.value), studio.limits(model.value)
    declared = Declared(SketchRequest, limits, preset)
    controls, parent = Controls(), gr.State(None)
    settings, output = columns()
    with settings:
        canvas = image_editor(
            label="Sketch: shapes, colours, places",  # short: the canvas's toolbar sits beside it
            image_mode="RGB",  # the strokes flattened over the background, on white paper
            brush=gr.Brush(default_size="auto", colors=INKS, default_color=INKS[4], color_mode="defaults"),
            canvas_size=(512, 512),
            elem_id="sketch-canvas",
        )
        describe = prompt_box("Describe the picture", "a blue triangle on a white background", required=True)
        controls.add("prompt", describe)
        generate, stop = run_buttons("sketch", "Draw it")
        with gr.Row():
            controls.add("strength", declared("strength"))
            controls.add("num_images", declared("num_images"))
        with gr.Accordion("Advanced", open=False):
            reuse = negative_and_sampler(controls, preset, limits)
            creative_controls(controls, studio, model)
    with output:
        results = result_panel("Pictures")

    fields = {**controls.fields, "model": model}
    inputs = {"canvas": canvas, **fields, "parent": parent}
    drawing = dict(prepare=from_canvas, files=("sketch",), labels={"sketch": "Sketch"})
    event = task_events(studio, SketchRequest, results, generate, inputs, fields, **drawing)
    source = dict(source=canvas, parent=parent, accept=editor_value)
    return finish_tab(TITLE, controls, results, stop=stop, events=[event], reuse=reuse, **source)
