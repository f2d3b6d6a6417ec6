"""Morph: from one caption (or image) to another with the noise held fixed; frames, GIF and MP4."""

from __future__ import annotations

import gradio as gr

from pipelines import MorphRequest, Studio

from ..controls import Controls, Declared, columns, negative_and_sampler, prompt_box, run_buttons, size_controls
from ..creative import creative_controls
from ..events import Tab, finish_tab, task_events
from ..images import source_image
from ..results import result_panel

TITLE = "Morph"
ONE_END = "**{given}** is set: add a **{missing}** to morph from one picture to the other, or remove it (×) to morph the captions."


def frame_progress(values: dict):
    """Progress as "Frame k of N": the job counts frames × steps over all its batches."""
    frames = int(values["num_frames"])
    return lambda event: f"Frame {min(frames, event.step * frames // event.total + 1)} of {frames}"


def render(studio: Studio, model: gr.Dropdown) -> Tab:
    preset, limits = studio.preset(model.value), studio.limits(model.value)
    declared = Declared(MorphRequest, limits, preset)
    controls, parent = Controls(), gr.State(None)
    settings, output = columns()
    with settings:
        controls.add("prompt", prompt_box("From", "a red circle on a white background", required=True))
        controls.add("prompt_b", prompt_box("To", "a blue circle on a white background"))
        generate, stop = run_buttons("morph", "Morph")
        with gr.Row():
            controls.add("num_frames", declared("num_frames"))
            controls.add("even_pacing", declared("even_pacing"))
        with gr.Row():
            controls.add("seed_b", declared("seed_b"))
            controls.add("fps", declared("fps"))
            controls.add("pingpong", declared("pingpong"))
        with gr.Accordion("Image morph", open=False, elem_id="morph-images") as image_morph:
            one_end = gr.Markdown(visible=False, elem_id="morph-one-end")
            with gr.Row():
                image_a = source_image("From image", height=200)
                image_b = source_image("To image", height=200)
            controls.add("depth", declared("depth"))
        with gr.Accordion("Advanced", open=False):
            # A non-ancestral sampler keeps neighbouring frames coherent.
            reuse = negative_and_sampler(controls, preset, limits, scheduler="Euler")
            creative_controls(controls, studio, model)
            with gr.Row():
                size_controls(controls, declared)
    with output:
        results = result_panel("Frames", caption=lambda recipe: f"t = {recipe.settings['position']:.2f}")
        animation = gr.Video(label="Animation", format="mp4", autoplay=True, loop=True, height=300)
        downloads = gr.File(label="GIF and MP4", file_count="multiple", interactive=False)
    results.extra = [animation, downloads]
    results.extra_values = lambda result: (result.files["mp4"], [result.files["gif"], result.files["mp4"]])

    fields = {**controls.fields, "model": model}
    inputs = {**fields, "image_a": image_a, "image_b": image_b, "parent": parent}
    images = ("image_a", "image_b")  # an image morph's two ends; a caption morph has none
    event = task_events(
        studio, MorphRequest, results, generate, inputs, fields, files=images, optional=images, describe=frame_progress
    )

    def pair(a, b) -> tuple:
        """A pair with one end set is never hidden: the section opens and says what the other end is for
        (an image sent here lands in "From image")."""
        if bool(a) == bool(b):
            return gr.skip(), gr.Markdown(visible=False)
        given, missing = ("From image", "To image") if a else ("To image", "From image")
        return gr.Accordion(open=True), gr.Markdown(ONE_END.format(given=given, missing=missing), visible=True)

    scroll = "() => document.querySelector('#morph-one-end')?.scrollIntoView({block: 'center', behavior: 'smooth'})"
    for end in (image_a, image_b):
        end.change(pair, [image_a, image_b], [image_morph, one_end], api_visibility="private", queue=False).then(
            None, js=scroll
        )
    source = dict(source=image_a, parent=parent)
    return finish_tab(TITLE, controls, results, stop=stop, events=[event], reuse=reuse, **source)
