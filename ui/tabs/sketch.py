"""Sketch: draw rough coloured shapes (on a blank canvas or over a picture), describe the picture; the
drawing becomes its layout."""

from __future__ import annotations

import gradio as gr

from pipelines import SketchRequest, Studio

from .. import common as ui

TITLE = "Sketch"
INKS = ["#e11e1e", "#f58c14", "#f0dc1e", "#1eaa3c", "#2350e6", "#912dc8", "#000000", "#808080", "#ffffff"]


def from_canvas(values: dict) -> dict:
    """The canvas's value → the drawing as one picture (strokes over the background, on white)."""
    canvas = values.pop("canvas") or {}
    return {**values, "sketch": canvas.get("composite")}


def render(studio: Studio, model: gr.Dropdown) -> ui.Tab:
    preset, limits = studio.preset(model.value), studio.limits(model.value)
    declared = ui.Declared(SketchRequest, limits, preset)
    controls, parent = ui.Controls(), gr.State(None)
    settings, output = ui.columns()
    with settings:
        canvas = ui.image_editor(
            label="Sketch: shapes, colours, places",  # short: the canvas's toolbar sits beside it
            image_mode="RGB",  # the strokes flattened over the background, on white paper
            brush=gr.Brush(default_size="auto", colors=INKS, default_color=INKS[4], color_mode="defaults"),
            canvas_size=(512, 512),
            elem_id="sketch-canvas",
        )
        describe = ui.prompt_box("Describe the picture", "a blue triangle on a white background", required=True)
        controls.add("prompt", describe)
        generate, stop = ui.run_buttons("sketch", "Draw it")
        with gr.Row():
            controls.add("strength", declared("strength"))
            controls.add("num_images", declared("num_images"))
        with gr.Accordion("Advanced", open=False):
            reuse = ui.negative_and_sampler(controls, preset, limits)
            ui.creative_controls(controls, studio, model)
    with output:
        results = ui.result_panel("Pictures")

    fields = {**controls.fields, "model": model}
    inputs = {"canvas": canvas, **fields, "parent": parent}
    drawing = dict(prepare=from_canvas, files=("sketch",), labels={"sketch": "Sketch"})
    event = ui.task_events(studio, SketchRequest, results, generate, inputs, fields, **drawing)
    source = dict(source=canvas, parent=parent, accept=ui.editor_value)
    return ui.finish_tab(TITLE, controls, results, stop=stop, events=[event], reuse=reuse, **source)
