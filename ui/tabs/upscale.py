"""Upscale: a picture two or four times larger, sharpened by the model's super-resolution stage (or a
hires pass); its prompt comes from the picture's recipe where it has one."""

from __future__ import annotations

import dataclasses

import gradio as gr
from PIL import Image

from pipelines import Studio, UpscaleRequest, read_recipe

from ..controls import Controls, Declared, columns, negative_and_sampler, prompt_box, run_buttons
from ..events import Receive, Tab, finish_tab, task_events
from ..images import source_image
from ..results import result_panel

TITLE = "Upscale"


def described_by(source: Image.Image | str | None) -> tuple[str, str]:
    """(prompt, negative prompt) of the recipe a picture carries, or blanks: it is what the picture shows."""
    try:
        recipe = read_recipe(source) if source is not None else None
    except OSError:  # not a picture: the request refuses it, with a sentence
        recipe = None
    return (recipe.prompt, recipe.negative_prompt) if recipe is not None else ("", "")


def render(studio: Studio, model: gr.Dropdown) -> Tab:
    preset, limits = studio.preset(model.value), studio.limits(model.value)
    declared = Declared(UpscaleRequest, limits, preset)
    controls, parent = Controls(), gr.State(None)
    settings, output = columns()
    with settings:
        image = source_image("Picture to upscale", height=300)
        with gr.Row():
            controls.add("scale", declared("scale"))
            controls.add("new_detail", declared("new_detail"),
                         lambda p, v: gr.Slider(value=p.upscale_detail if v is None else v))
        prompt = controls.add("prompt", prompt_box("What it shows (filled from its recipe)", "a red circle on a white background"))
        generate, stop = run_buttons("upscale", "Upscale")
        with gr.Accordion("Advanced", open=False):
            reuse = negative_and_sampler(controls, preset, limits, request_type=UpscaleRequest)
            controls.add("num_images", declared("num_images"))
    with output:
        results = result_panel("Upscaled")

    fields = {**controls.fields, "model": model}
    inputs = {"image": image, **fields, "parent": parent}
    event = task_events(studio, UpscaleRequest, results, generate, inputs, fields, files=("image",))
    negative = controls.fields["negative_prompt"]
    image.upload(described_by, image, [prompt, negative], api_visibility="private", queue=False)
    tab = finish_tab(TITLE, controls, results, stop=stop, events=[event], reuse=reuse, source=image, parent=parent)
    # A picture sent here brings its words along.
    receive = Receive([image, prompt, negative, parent], lambda picture, image_id: (picture, *described_by(picture), image_id))
    return dataclasses.replace(tab, receive=receive)
