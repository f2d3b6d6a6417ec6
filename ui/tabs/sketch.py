"""Sketch: draw rough coloured shapes (on a blank canvas or over a picture), describe the picture; the
drawing becomes its layout."""

from __future__ import annotations

import gradio as gr

from pipelines import SketchRequest, Studio

from ..common import (
    GPU,
    Controls,
    Receive,
    Tab,
    api_endpoint,
    editor_value,
    prompt_box,
    result_panel,
    reuse_last_seed,
    run_buttons,
    sampler_controls,
    task_handler,
)

TITLE = "Sketch"
INKS = ["#e11e1e", "#f58c14", "#f0dc1e", "#1eaa3c", "#2350e6", "#912dc8", "#000000", "#808080", "#ffffff"]


def from_canvas(values: dict) -> dict:
    """The canvas's value → the drawing as one picture (strokes over the background, on white)."""
    canvas = values.pop("canvas") or {}
    return {**values, "sketch": canvas.get("composite")}


def render(studio: Studio, model: gr.Dropdown) -> Tab:
    controls = Controls()
    parent = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            canvas = gr.ImageEditor(
                label="Sketch: the shapes in their colours, where they go",
                type="filepath",  # the drawing is opened like any upload: checked, made RGB, fitted to the model
                image_mode="RGB",  # the strokes flattened over the background, on white paper
                format="png",
                sources=["upload", "clipboard"],
                brush=gr.Brush(default_size="auto", colors=INKS, default_color=INKS[4], color_mode="defaults"),
                eraser=gr.Eraser(default_size="auto"),
                layers=False,
                transforms=(),
                canvas_size=(512, 512),
                height=420,
                elem_id="sketch-canvas",
            )
            controls.add("prompt", prompt_box("Describe the picture", "a blue triangle on a white background", required=True))
            generate, stop = run_buttons("sketch", "Draw it")
            with gr.Row():
                controls.add("strength", gr.Slider(0.05, 1, SketchRequest.strength, step=0.05, label="How freely",
                                                   info="0 = keep the drawing · 1 = ignore it"))
                controls.add("num_images", gr.Slider(1, studio.max_images, 2, step=1, label="Images"))
            with gr.Accordion("Advanced", open=False):
                controls.add("negative_prompt", prompt_box("Negative prompt", lines=1))
                reuse = sampler_controls(controls, studio.preset(model.value))
        with gr.Column(scale=6, min_width=320):
            results = result_panel("Pictures")

    fields = {**controls.fields, "model": model}
    event = generate.click(
        task_handler(studio, SketchRequest, results, from_canvas),
        inputs_kwargs={"canvas": canvas, **fields, "parent": parent},
        outputs=results.outputs,
        api_visibility="private",
        concurrency_id=GPU,
    )
    api_endpoint(studio, SketchRequest, results, fields, files=("sketch",))
    stop.click(None, None, None, cancels=[event], api_visibility="private", queue=False)
    reuse_last_seed(reuse, controls, results)
    canvas.upload(lambda: None, None, parent, api_visibility="private", queue=False)  # a new upload has no parent
    return Tab(TITLE, controls, results, Receive([canvas, parent], lambda picture, image_id: (editor_value(picture), image_id)))
