"""Variations: new takes on an image, with one dial for how close they stay."""

from __future__ import annotations

import gradio as gr

from pipelines import Studio, VariationsRequest

from ..common import (
    GPU,
    Controls,
    Receive,
    Tab,
    api_endpoint,
    prompt_box,
    result_panel,
    reuse_last_seed,
    run_buttons,
    sampler_controls,
    task_handler,
)

TITLE = "Variations"
MODE_LABELS = {"image": "Image to image", "embedding": "Image prompt (IP-Adapter)"}


def render(studio: Studio, model: gr.Dropdown) -> Tab:
    controls = Controls()
    parent = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            image = gr.Image(
                label="Image to vary",
                type="filepath",
                format="png",
                sources=["upload", "clipboard"],
                height=300,
                elem_classes="source-image",
            )
            controls.add("similarity", gr.Slider(0, 1, 0.7, step=0.05, label="Similarity", info="0 = loose · 1 = very close"))
            controls.add("prompt", prompt_box("Steer (optional)", "same, but on a black background"))
            generate, stop = run_buttons("variations", "Make variations")
            controls.add("num_images", gr.Slider(1, studio.max_images, 4, step=1, label="Variations"))
            with gr.Accordion("Advanced", open=False):
                controls.add("mode", gr.Radio(
                    [(MODE_LABELS[m], m) for m in VariationsRequest.modes],
                    value="image",
                    label="Mode",
                    info="Image prompt needs a model with an adapter (SD 1.5, SDXL)",
                ))
                controls.add("negative_prompt", prompt_box("Negative prompt", lines=1))
                reuse = sampler_controls(controls, studio.preset(model.value))
        with gr.Column(scale=6, min_width=320):
            results = result_panel("Variations")

    fields = {**controls.fields, "model": model}
    event = generate.click(
        task_handler(studio, VariationsRequest, results),
        inputs_kwargs={"image": image, **fields, "parent": parent},
        outputs=results.outputs,
        api_visibility="private",
        concurrency_id=GPU,
    )
    api_endpoint(studio, VariationsRequest, results, fields, files=("image",))
    stop.click(None, None, None, cancels=[event], api_visibility="private", queue=False)
    reuse_last_seed(reuse, controls, results)
    image.upload(lambda: None, None, parent, api_visibility="private", queue=False)  # a new upload has no parent
    return Tab(TITLE, controls, results, Receive([image, parent], lambda picture, image_id: (picture, image_id)))
