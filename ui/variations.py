"""Variations: new takes on an image, with one dial for how close they stay."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pipelines import Studio, VariationsRequest
from pipelines.images import load_image

from .common import GPU, ResultPanel, gallery_items, recipes_json, result_panel, sampler_controls, stream, upload_path


@dataclass
class VariationsTab:
    generate: gr.Button
    results: ResultPanel
    receive: tuple  # (outputs, accept(image, parent) -> values): how "Send to variations" lands here


def render(studio: Studio, model: gr.Dropdown) -> VariationsTab:
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
            similarity = gr.Slider(0, 1, 0.7, step=0.05, label="Similarity", info="0 = loose · 1 = very close")
            prompt = gr.Textbox("", label="Steer (optional)", placeholder="same, but on a black background", lines=2, max_length=2000)
            with gr.Row():
                generate = gr.Button("Make variations", variant="primary", elem_id="variations-generate", scale=3)
                stop = gr.Button("Stop", variant="stop", scale=1)
            num_images = gr.Slider(1, studio.settings.max_images, 4, step=1, label="Variations")
            with gr.Accordion("Advanced", open=False):
                mode = gr.Radio(
                    [("Image to image", "image"), ("Image prompt (IP-Adapter)", "embedding")],
                    value="image",
                    label="Mode",
                    info="Image prompt needs a model with an adapter (SD 1.5, SDXL)",
                )
                negative = gr.Textbox("", label="Negative prompt", lines=1, max_length=2000)
                sampler = sampler_controls(studio, model.value)
        with gr.Column(scale=6, min_width=320):
            results = result_panel("Variations")

    def run(
        image: str | None,
        prompt: str = "",
        seed: float = -1,
        num_images: float = 4,
        similarity: float = 0.7,
        mode: str = "image",
        negative_prompt: str = "",
        steps: float = 20,
        guidance_scale: float = 5.0,
        scheduler: str = "Euler a",
        model: str = "shapes",
        parent: str | None = None,
        progress=gr.Progress(),
    ):
        """Variations of an image; similarity 1 stays very close, 0 wanders far."""

        def start():
            request = VariationsRequest(
                model=model,
                image=load_image(upload_path(image), studio.settings.max_pixels),
                prompt=prompt,
                negative_prompt=negative_prompt,
                seed=seed,
                num_images=num_images,
                similarity=similarity,
                mode=mode,
                steps=steps,
                guidance_scale=guidance_scale,
                scheduler=scheduler,
                parent=parent,
            )
            return studio.variations(request)

        result = yield from stream(start, progress)
        yield gallery_items(result), recipes_json(result)

    settings = [prompt, sampler.seed, num_images, similarity, mode, negative]
    settings += [sampler.steps, sampler.guidance, sampler.scheduler, model, parent]
    outputs = [results.gallery, results.recipes]
    event = generate.click(run, [image, *settings], outputs, api_visibility="private", concurrency_id=GPU)
    # The HTTP API takes the image as a plain file: Atelier opens it, so a bad upload gets a clear message.
    with gr.Row(visible=False):
        api_image = gr.File(label="image")
        api_run = gr.Button("variations")
    api_run.click(run, [api_image, *settings], outputs, api_name="variations", concurrency_id=GPU, preprocess=False)
    stop.click(None, None, None, cancels=[event], api_visibility="private", queue=False)
    image.upload(lambda: None, None, parent, api_visibility="private", queue=False)  # a new upload has no parent

    def accept(picture, image_id):
        return picture, image_id

    return VariationsTab(generate, results, ([image, parent], accept))
