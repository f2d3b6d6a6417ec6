"""Inpaint: paint a mask over an image, describe what goes there; the rest stays exactly as it was.
Outpainting extends the canvas and fills the new border the same way."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np
from PIL import Image

from pipelines import FILL_MODES, InpaintRequest, OutpaintRequest, Studio
from pipelines.images import load_image, open_upload
from pipelines.masks import mask_from_layers

from .common import GPU, ResultPanel, gallery_items, recipes_json, result_panel, sampler_controls, stream, upload_path

FILL_LABELS = {"original": "Original", "fill": "Fill from surroundings", "noise": "Noise"}


@dataclass
class InpaintTab:
    generate: gr.Button
    editor: gr.ImageMask
    results: ResultPanel
    receive: tuple


def editor_value(image: Image.Image) -> dict:
    """A fresh editor value: the image with no painted layers, so no stale mask survives."""
    return {"background": image, "layers": [], "composite": image}


def split_editor(value: dict | None, max_pixels: int) -> tuple[Image.Image | None, Image.Image | None]:
    """The editor's value → (RGB image, L mask)."""
    if not value or value.get("background") is None:
        return None, None
    background = np.asarray(value["background"])
    if background.ndim == 3 and background.shape[2] == 4:
        image = Image.fromarray(background, "RGBA")
    else:
        image = Image.fromarray(background)
    image = load_image(image, max_pixels)
    mask = mask_from_layers(background, value.get("layers"))
    return image, mask


def render(studio: Studio, model: gr.Dropdown) -> InpaintTab:
    parent = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            editor = gr.ImageMask(
                label="Image — paint over what to repaint",
                type="numpy",
                image_mode="RGBA",  # the painted layers' alpha is the mask: RGB would drop it
                format="png",
                layers=False,
                sources=["upload", "clipboard"],
                brush=gr.Brush(default_size="auto", colors=[("#ff3b8b", 0.55)], color_mode="fixed"),  # translucent: the image shows through
                eraser=gr.Eraser(default_size="auto"),
                transforms=(),
                height=420,
                elem_id="inpaint-editor",
            )
            prompt = gr.Textbox(label="What goes there", placeholder="a red circle", lines=2, max_length=2000)
            with gr.Row():
                generate = gr.Button("Inpaint", variant="primary", elem_id="inpaint-generate", scale=3)
                stop = gr.Button("Stop", variant="stop", scale=1)
            with gr.Row():
                strength = gr.Slider(0.05, 1, 0.85, step=0.05, label="Strength (how much the area changes)")
                num_images = gr.Slider(1, studio.settings.max_images, 2, step=1, label="Images")
            with gr.Accordion("Mask and area", open=False):
                with gr.Row():
                    mask_blur = gr.Slider(0, 64, 4, step=1, label="Feather (px)")
                    grow = gr.Slider(-64, 64, 0, step=1, label="Grow (+) / shrink (−) (px)")
                with gr.Row():
                    only_masked = gr.Checkbox(True, label="Inpaint only the masked area (at full model resolution)")
                    padding = gr.Slider(0, 256, 16, step=4, label="Context around it (px)")
                fill = gr.Radio([(FILL_LABELS[m], m) for m in FILL_MODES], value="original", label="Masked area starts from")
                color_correction = gr.Checkbox(True, label="Match colours at the border when the seam shows")
            with gr.Accordion("Outpaint", open=False):
                gr.Markdown("Extend the canvas; the new border is filled and the original kept exactly.")
                with gr.Row():
                    left = gr.Slider(0, 512, 0, step=8, label="Left")
                    right = gr.Slider(0, 512, 0, step=8, label="Right")
                    top = gr.Slider(0, 512, 0, step=8, label="Top")
                    bottom = gr.Slider(0, 512, 0, step=8, label="Bottom")
                outpaint_button = gr.Button("Outpaint", variant="secondary", elem_id="outpaint-generate")
            with gr.Accordion("Advanced", open=False):
                negative = gr.Textbox("", label="Negative prompt", lines=1, max_length=2000)
                sampler = sampler_controls(studio, model.value)
        with gr.Column(scale=6, min_width=320):
            results = result_panel("Inpainted")
    # The HTTP API takes a plain image and an L-mode mask (white = repaint): scripts need no editor.
    with gr.Row(visible=False):
        api_image = gr.File(label="image")  # plain files: Atelier opens them and explains a bad one
        api_mask = gr.File(label="mask")
        api_inpaint = gr.Button("inpaint")
        api_outpaint = gr.Button("outpaint")

    def painted(start, progress):
        result = yield from stream(start, progress)
        yield gallery_items(result), recipes_json(result)

    def inpaint_request(image, mask, prompt, negative_prompt, seed, steps, guidance_scale, strength, mask_blur, only_masked, padding, **kw):
        return InpaintRequest(
            image=image,
            mask=mask,
            prompt=prompt,
            negative_prompt=negative_prompt,
            seed=seed,
            steps=steps,
            guidance_scale=guidance_scale,
            strength=strength,
            mask_blur=mask_blur,
            only_masked=only_masked,
            padding=padding,
            **kw,
        )

    def run_editor(
        editor, prompt, negative_prompt, seed, steps, guidance_scale, strength, mask_blur, only_masked, padding,
        grow, fill, color_correction, num_images, scheduler, model, parent, progress=gr.Progress(),
    ):
        def start():
            image, mask = split_editor(editor, studio.settings.max_pixels)
            if image is None:
                raise gr.Error("Upload an image first, then paint over the area to repaint.")
            request = inpaint_request(
                image, mask, prompt, negative_prompt, seed, steps, guidance_scale, strength, mask_blur, only_masked,
                padding, grow=grow, fill=fill, color_correction=color_correction, num_images=num_images,
                scheduler=scheduler, model=model, parent=parent,
            )
            return studio.inpaint(request)

        yield from painted(start, progress)

    def inpaint(
        image: str,
        mask: str,
        prompt: str,
        negative_prompt: str = "",
        seed: float = -1,
        steps: float = 20,
        guidance_scale: float = 5.0,
        strength: float = 0.85,
        mask_blur: float = 4,
        only_masked: bool = True,
        padding: float = 16,
        model: str = "shapes",
        progress=gr.Progress(),
    ):
        """Repaint the white part of `mask` in `image`; everything outside the feathered mask is kept exactly."""
        max_pixels = studio.settings.max_pixels

        def start():
            return studio.inpaint(
                inpaint_request(
                    load_image(upload_path(image), max_pixels),
                    open_upload(upload_path(mask), "mask") if mask else None,
                    prompt, negative_prompt, seed, steps, guidance_scale, strength, mask_blur, only_masked, padding,
                    model=model, scheduler=studio.preset(model).scheduler,
                )
            )

        yield from painted(start, progress)

    def outpaint(
        image: str,
        prompt: str,
        left: float = 0,
        right: float = 0,
        top: float = 0,
        bottom: float = 0,
        negative_prompt: str = "",
        seed: float = -1,
        steps: float = 20,
        guidance_scale: float = 5.0,
        strength: float = 1.0,
        mask_blur: float = 4,
        model: str = "shapes",
        progress=gr.Progress(),
    ):
        """Extend the canvas by the given pixels on each side and fill the new border."""

        def start():
            return studio.outpaint(
                OutpaintRequest(
                    model=model, image=load_image(upload_path(image), studio.settings.max_pixels), prompt=prompt,
                    negative_prompt=negative_prompt, seed=seed, steps=steps, guidance_scale=guidance_scale,
                    strength=strength, mask_blur=mask_blur, left=left, right=right, top=top, bottom=bottom,
                    only_masked=False, scheduler=studio.preset(model).scheduler,
                )
            )

        yield from painted(start, progress)

    def run_outpaint(editor, prompt, left, right, top, bottom, negative_prompt, seed, steps, guidance_scale, strength, mask_blur, model, progress=gr.Progress()):
        image, _ = split_editor(editor, studio.settings.max_pixels)
        if image is None:
            raise gr.Error("Upload an image first.")
        yield from outpaint(image, prompt, left, right, top, bottom, negative_prompt, seed, steps, guidance_scale, strength, mask_blur, model, progress)

    out = [results.gallery, results.recipes]
    common = [prompt, negative, sampler.seed, sampler.steps, sampler.guidance, strength, mask_blur, only_masked, padding]
    event = generate.click(
        run_editor,
        [editor, *common, grow, fill, color_correction, num_images, sampler.scheduler, model, parent],
        out,
        api_visibility="private",
        concurrency_id=GPU,
    )
    sides = [left, right, top, bottom]
    out_event = outpaint_button.click(
        run_outpaint,
        [editor, prompt, *sides, negative, sampler.seed, sampler.steps, sampler.guidance, strength, mask_blur, model],
        out,
        api_visibility="private",
        concurrency_id=GPU,
    )
    stop.click(None, None, None, cancels=[event, out_event], api_visibility="private", queue=False)
    # The API events take their values unprocessed: the requests' own checks name any bad field.
    api_inpaint.click(
        inpaint, [api_image, api_mask, *common, model], out, api_name="inpaint", concurrency_id=GPU, preprocess=False
    )
    api_outpaint.click(
        outpaint,
        [api_image, prompt, *sides, negative, sampler.seed, sampler.steps, sampler.guidance, strength, mask_blur, model],
        out,
        api_name="outpaint",
        concurrency_id=GPU,
        preprocess=False,
    )
    editor.upload(lambda: None, None, parent, api_visibility="private", queue=False)

    def accept(picture, image_id):
        return editor_value(picture), image_id

    return InpaintTab(generate, editor, results, ([editor, parent], accept))
