"""Inpaint: paint a mask over an image, describe what goes there; the rest stays exactly as it was.
Outpainting (its own task and endpoint) extends the canvas and fills the new border the same way, with
the same controls."""

from __future__ import annotations

import gradio as gr

from pipelines import InpaintRequest, OutpaintRequest, Studio

from ..common import (
    GPU,
    Controls,
    Receive,
    Tab,
    api_endpoint,
    editor_value,
    layers_mask,
    prompt_box,
    result_panel,
    reuse_last_seed,
    run_buttons,
    sampler_controls,
    task_handler,
)

TITLE = "Inpaint"
FILL_LABELS = {"original": "Original", "fill": "Fill from surroundings", "noise": "Noise"}
SIDES = ("left", "right", "top", "bottom")


def from_editor(values: dict, *, with_mask: bool) -> dict:
    """The editor's value (image and painted layers as files) → the request's image (and mask)."""
    editor = values.pop("editor") or {}
    if not editor.get("background"):
        raise gr.Error("Upload an image first, then paint over the area to repaint." if with_mask else "Upload an image first.")
    mask = {"mask": layers_mask(editor.get("layers"))} if with_mask else {}
    return {**values, "image": editor["background"], **mask}


def seed_and_seam(recipe) -> str:
    return f"seed {recipe.seed} · seam {recipe.settings['seam']:.1f}"


def render(studio: Studio, model: gr.Dropdown) -> Tab:
    controls = Controls()
    parent = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            editor = gr.ImageMask(
                label="Image — paint over what to repaint",
                type="filepath",  # the image is opened like any upload: checked, made RGB, scaled into the limit
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
            controls.add("prompt", prompt_box("What goes there", "a red circle", required=True))
            generate, stop = run_buttons("inpaint", "Inpaint")
            with gr.Row():
                controls.add("strength", gr.Slider(0.05, 1, 0.85, step=0.05, label="Strength (how much the area changes)"))
                controls.add("num_images", gr.Slider(1, studio.max_images, 2, step=1, label="Images"))
            with gr.Accordion("Mask and area", open=False):
                with gr.Row():
                    controls.add("mask_blur", gr.Slider(0, 64, 4, step=1, label="Feather (px)"))
                    controls.add("grow", gr.Slider(-64, 64, 0, step=1, label="Grow (+) / shrink (−) (px)"))
                with gr.Row():
                    controls.add("only_masked", gr.Checkbox(True, label="Inpaint only the masked area (at full model resolution)"))
                    controls.add("padding", gr.Slider(0, 256, 16, step=4, label="Context around it (px)"))
                controls.add("fill", gr.Radio([(FILL_LABELS[m], m) for m in InpaintRequest.fill_modes], value="original",
                                              label="Masked area starts from"))
                controls.add("color_correction", gr.Checkbox(True, label="Match colours at the border when the seam shows"))
            with gr.Accordion("Outpaint", open=False):
                gr.Markdown("Extend the canvas; the new border is filled and the original kept exactly.")
                with gr.Row():
                    for side in SIDES:
                        controls.add(side, gr.Slider(0, 512, 0, step=8, label=side.title()))
                outpaint_button = gr.Button("Outpaint", variant="secondary", elem_id="outpaint-generate")
            with gr.Accordion("Advanced", open=False):
                controls.add("negative_prompt", prompt_box("Negative prompt", lines=1))
                reuse = sampler_controls(controls, studio.preset(model.value))
        with gr.Column(scale=6, min_width=320):
            results = result_panel("Inpainted", caption=seed_and_seam)

    shared = {name: c for name, c in controls.fields.items() if name not in ("grow", *SIDES)} | {"model": model}
    inpaint_fields = {**shared, "grow": controls.fields["grow"]}
    outpaint_fields = {**shared, **{side: controls.fields[side] for side in SIDES}}
    events = [
        button.click(
            task_handler(studio, request_type, results, lambda values, with_mask=with_mask: from_editor(values, with_mask=with_mask)),
            inputs_kwargs={"editor": editor, **fields, "parent": parent},
            outputs=results.outputs,
            api_visibility="private",
            concurrency_id=GPU,
        )
        for button, request_type, fields, with_mask in (
            (generate, InpaintRequest, inpaint_fields, True),
            (outpaint_button, OutpaintRequest, outpaint_fields, False),
        )
    ]
    # The HTTP API takes a plain image and an L-mode mask (white = repaint): scripts need no editor.
    api_endpoint(studio, InpaintRequest, results, inpaint_fields, files=("image", "mask"))
    api_endpoint(studio, OutpaintRequest, results, outpaint_fields, files=("image",))
    stop.click(None, None, None, cancels=events, api_visibility="private", queue=False)
    reuse_last_seed(reuse, controls, results)
    editor.upload(lambda: None, None, parent, api_visibility="private", queue=False)
    return Tab(TITLE, controls, results, Receive([editor, parent], lambda picture, image_id: (editor_value(picture), image_id)))
