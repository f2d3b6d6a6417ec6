"""Variations: new takes on an image, with one dial for how close they stay."""

from __future__ import annotations

import gradio as gr

from pipelines import Studio, VariationsRequest

from .. import common as ui

TITLE = "Variations"
MODE_LABELS = {"image": "Image to image", "embedding": "Image prompt (IP-Adapter)"}


def render(studio: Studio, model: gr.Dropdown) -> ui.Tab:
    preset, limits = studio.preset(model.value), studio.limits(model.value)
    declared = ui.Declared(VariationsRequest, limits, preset)
    controls, parent = ui.Controls(), gr.State(None)
    settings, output = ui.columns()
    with settings:
        image = ui.source_image("Image to vary", height=300)
        controls.add("similarity", declared("similarity"))
        controls.add("prompt", ui.prompt_box("Steer (optional)", "same, but on a black background"))
        generate, stop = ui.run_buttons("variations", "Make variations")
        controls.add("num_images", declared("num_images"))
        with gr.Accordion("Advanced", open=False):
            controls.add("mode", declared("mode", labels=MODE_LABELS))
            reuse = ui.negative_and_sampler(controls, preset, limits)
            ui.creative_controls(controls, studio, model)
    with output:
        results = ui.result_panel("Variations")

    fields = {**controls.fields, "model": model}
    inputs = {"image": image, **fields, "parent": parent}
    event = ui.task_events(studio, VariationsRequest, results, generate, inputs, fields, files=("image",))
    return ui.finish_tab(TITLE, controls, results, stop=stop, events=[event], reuse=reuse, source=image, parent=parent)
