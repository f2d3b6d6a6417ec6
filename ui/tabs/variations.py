"""Variations: new takes on an image, with one dial for how close they stay."""

from __future__ import annotations

import gradio as gr

from pipelines import Studio, VariationsRequest

from ..controls import Controls, Declared, columns, negative_and_sampler, prompt_box, run_buttons
from ..creative import creative_controls
from ..events import Tab, finish_tab, task_events
from ..images import source_image
from ..results import result_panel

TITLE = "Variations"
MODE_LABELS = {"image": "Image to image", "embedding": "Image prompt (IP-Adapter)"}


def render(studio: Studio, model: gr.Dropdown) -> Tab:
    preset, limits = studio.preset(model.value), studio.limits(model.value)
    declared = Declared(VariationsRequest, limits, preset)
    controls, parent = Controls(), gr.State(None)
    settings, output = columns()
    with settings:
        image = source_image("Image to vary", height=300)
        controls.add("similarity", declared("similarity"))
        controls.add("prompt", prompt_box("Steer (optional)", "same, but on a black background"))
        generate, stop = run_buttons("variations", "Make variations")
        controls.add("num_images", declared("num_images"))
        with gr.Accordion("Advanced", open=False):
            controls.add("mode", declared("mode", labels=MODE_LABELS))
            reuse = negative_and_sampler(controls, preset, limits)
            creative_controls(controls, studio, model)
    with output:
        results = result_panel("Variations")

    fields = {**controls.fields, "model": model}
    inputs = {"image": image, **fields, "parent": parent}
    event = task_events(studio, VariationsRequest, results, generate, inputs, fields, files=("image",))
    return finish_tab(TITLE, controls, results, stop=stop, events=[event], reuse=reuse, source=image, parent=parent)
