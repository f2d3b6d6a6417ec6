"""Morph: from one caption (or image) to another with the noise held fixed; frames, GIF and MP4."""

from __future__ import annotations

import gradio as gr

from pipelines import MorphRequest, Studio

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
    size_controls,
    task_handler,
)

TITLE = "Morph"


def render(studio: Studio, model: gr.Dropdown) -> Tab:
    preset = studio.preset(model.value)
    controls = Controls()
    parent = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            controls.add("prompt", prompt_box("From", "a red circle on a white background", required=True))
            controls.add("prompt_b", prompt_box("To", "a blue circle on a white background"))
            generate, stop = run_buttons("morph", "Morph")
            with gr.Row():
                controls.add("num_frames", gr.Slider(2, 48, 8, step=1, label="Frames"))
                controls.add("even_pacing", gr.Checkbox(True, label="Even pacing", info="place frames where the change is fastest"))
            with gr.Row():
                controls.add("seed_b", gr.Number(-1, label="Travel to seed (−1 = keep the noise)", precision=0, minimum=-1))
                controls.add("fps", gr.Slider(1, 30, 8, step=1, label="Frames per second"))
                controls.add("pingpong", gr.Checkbox(False, label="Ping-pong"))
            with gr.Accordion("Image morph", open=False):
                with gr.Row():
                    picture = dict(type="filepath", format="png", height=200, elem_classes="source-image")
                    image_a = gr.Image(label="From image", **picture)
                    image_b = gr.Image(label="To image", **picture)
                controls.add("depth", gr.Slider(0.05, 1, 0.6, step=0.05, label="Depth (how far the images may change)"))
            with gr.Accordion("Advanced", open=False):
                controls.add("negative_prompt", prompt_box("Negative prompt", lines=1))
                with gr.Row():
                    size_controls(controls, preset)
                # A non-ancestral sampler keeps neighbouring frames coherent.
                reuse = sampler_controls(controls, preset, scheduler="Euler")
        with gr.Column(scale=6, min_width=320):
            results = result_panel("Frames", caption=lambda recipe: f"t = {recipe.settings['position']:.2f}")
            animation = gr.Video(label="Animation", format="mp4", autoplay=True, loop=True, height=300)
            downloads = gr.File(label="GIF and MP4", file_count="multiple", interactive=False)
    results.extra = [animation, downloads]
    results.extra_values = lambda result: (result.files["mp4"], [result.files["gif"], result.files["mp4"]])

    fields = {**controls.fields, "model": model}
    event = generate.click(
        task_handler(studio, MorphRequest, results),
        inputs_kwargs={**fields, "image_a": image_a, "image_b": image_b, "parent": parent},
        outputs=results.outputs,
        api_visibility="private",
        concurrency_id=GPU,
    )
    api_endpoint(studio, MorphRequest, results, fields, files=("image_a", "image_b"), optional=("image_a", "image_b"))
    stop.click(None, None, None, cancels=[event], api_visibility="private", queue=False)
    reuse_last_seed(reuse, controls, results)
    image_a.upload(lambda: None, None, parent, api_visibility="private", queue=False)
    return Tab(TITLE, controls, results, Receive([image_a, parent], lambda picture, image_id: (picture, image_id)))
