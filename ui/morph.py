"""Morph: from one caption (or image) to another with the noise held fixed; frames, GIF and MP4."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pipelines import MorphRequest, Studio
from pipelines.images import load_image

from .common import GPU, ResultPanel, gallery_items, recipes_json, result_panel, sampler_controls, stream, upload_path


@dataclass
class MorphTab:
    generate: gr.Button
    results: ResultPanel
    receive: tuple


def render(studio: Studio, model: gr.Dropdown) -> MorphTab:
    preset = studio.preset(model.value)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            prompt_a = gr.Textbox(label="From", placeholder="a red circle on a white background", lines=2, max_length=2000)
            prompt_b = gr.Textbox(label="To", placeholder="a blue circle on a white background", lines=2, max_length=2000)
            with gr.Row():
                generate = gr.Button("Morph", variant="primary", elem_id="morph-generate", scale=3)
                stop = gr.Button("Stop", variant="stop", scale=1)
            with gr.Row():
                num_frames = gr.Slider(2, 48, 8, step=1, label="Frames")
                even = gr.Checkbox(True, label="Even pacing", info="place frames where the change is fastest")
            with gr.Row():
                seed_b = gr.Number(-1, label="Travel to seed (−1 = keep the noise)", precision=0, minimum=-1)
                fps = gr.Slider(1, 30, 8, step=1, label="Frames per second")
                pingpong = gr.Checkbox(False, label="Ping-pong")
            with gr.Accordion("Image morph", open=False):
                with gr.Row():
                    picture = dict(type="filepath", format="png", height=200, elem_classes="source-image")
                    image_a = gr.Image(label="From image", **picture)
                    image_b = gr.Image(label="To image", **picture)
                depth = gr.Slider(0.05, 1, 0.6, step=0.05, label="Depth (how far the images may change)")
            with gr.Accordion("Advanced", open=False):
                negative = gr.Textbox("", label="Negative prompt", lines=1, max_length=2000)
                with gr.Row():
                    width = gr.Slider(preset.min_size, preset.max_size, preset.width, step=8, label="Width")
                    height = gr.Slider(preset.min_size, preset.max_size, preset.height, step=8, label="Height")
                # A non-ancestral sampler keeps neighbouring frames coherent.
                sampler = sampler_controls(studio, model.value, scheduler="Euler")
        with gr.Column(scale=6, min_width=320):
            results = result_panel("Frames")
            animation = gr.Video(label="Animation", format="mp4", autoplay=True, loop=True, height=300)
            downloads = gr.File(label="GIF and MP4", file_count="multiple", interactive=False)

    def run(
        prompt_a: str,
        prompt_b: str,
        num_frames: float = 8,
        seed: float = -1,
        seed_b: float = -1,
        steps: float = 20,
        guidance_scale: float = 5.0,
        even_pacing: bool = True,
        negative_prompt: str = "",
        scheduler: str = "Euler",
        width: float = 64,
        height: float = 64,
        fps: float = 8,
        pingpong: bool = False,
        image_a: str | None = None,
        image_b: str | None = None,
        depth: float = 0.6,
        model: str = "shapes",
        progress=gr.Progress(),
    ):
        """Frames between two captions (or two images), an MP4 and a GIF, and each frame's recipe."""

        def start():
            max_pixels = studio.settings.max_pixels
            path_a, path_b = upload_path(image_a), upload_path(image_b)
            request = MorphRequest(
                model=model,
                prompt=prompt_a,
                prompt_b=prompt_b,
                negative_prompt=negative_prompt,
                num_frames=num_frames,
                seed=seed,
                seed_b=seed_b,
                steps=steps,
                guidance_scale=guidance_scale,
                scheduler=scheduler,
                even_pacing=even_pacing,
                width=width,
                height=height,
                fps=fps,
                pingpong=pingpong,
                image_a=load_image(path_a, max_pixels, "image_a") if path_a else None,
                image_b=load_image(path_b, max_pixels, "image_b") if path_b else None,
                depth=depth,
            )
            return studio.morph(request)

        result = yield from stream(start, progress, lambda p: ([(p, "preview")], gr.skip(), gr.skip(), gr.skip()))
        files = [result.files["gif"], result.files["mp4"]]
        yield gallery_items(result), result.files["mp4"], files, recipes_json(result)

    before = [prompt_a, prompt_b, num_frames, sampler.seed, seed_b, sampler.steps, sampler.guidance, even, negative]
    before += [sampler.scheduler, width, height, fps, pingpong]
    outputs = [results.gallery, animation, downloads, results.recipes]
    event = generate.click(run, [*before, image_a, image_b, depth, model], outputs, api_visibility="private", concurrency_id=GPU)
    with gr.Row(visible=False):  # the HTTP API takes images as plain files (see ui/variations.py)
        api_a, api_b = gr.File(label="image_a"), gr.File(label="image_b")
        api_run = gr.Button("morph")
    api_run.click(
        run, [*before, api_a, api_b, depth, model], outputs, api_name="morph", concurrency_id=GPU, preprocess=False
    )
    stop.click(None, None, None, cancels=[event], api_visibility="private", queue=False)

    def accept(picture, image_id):
        return (picture,)

    return MorphTab(generate, results, ([image_a], accept))
