"""Variations: new takes on an image, with one dial for how close they stay."""

from __future__ import annotations

import gradio as gr

from pipelines import Studio, VariationsRequest

from .. import common as ui

TITLE = "Variations"
MODE_LABELS = {"image": "Image to image", "embedding": "Image prompt (IP-Adapter)"}


def render(studio: Studio, model: gr.Dropdown) -> ui.Tab:
    controls, parent = ui.Controls(), gr.State(None)
    settings, output = ui.columns()
    with settings:
        image = ui.source_image("Image to vary", height=300)
        similarity = gr.Slider(0, 1, 0.7, step=0.05, label="Similarity", info="0 = a new picture · 0.7 keeps the subject · 1 = almost the same")
        controls.add("similarity", similarity)
        controls.add("prompt", ui.prompt_box("Steer (optional)", "same, but on a black background"))
        generate, stop = ui.run_buttons("variations", "Make variations")
        controls.add("num_images", gr.Slider(1, studio.max_images, 4, step=1, label="Variations"))
        with gr.Accordion("Advanced", open=False):
            info = "Image prompt needs a model with an adapter (SD 1.5, SDXL)"
            controls.add("mode", ui.choices(MODE_LABELS, VariationsRequest.modes, label="Mode", info=info))
            reuse = ui.negative_and_sampler(controls, studio.preset(model.value))
            ui.creative_controls(controls, studio, model)
    with output:
        results = ui.result_panel("Variations")

    fields = {**controls.fields, "model": model}
    inputs = {"image": image, **fields, "parent": parent}
    event = ui.task_events(studio, VariationsRequest, results, generate, inputs, fields, files=("image",))
    return ui.finish_tab(TITLE, controls, results, stop=stop, events=[event], reuse=reuse, source=image, parent=parent)
