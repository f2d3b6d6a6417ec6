"""Text to image: a prompt in, a gallery of PNGs with recipes out, with live previews and Stop."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from pipelines import Studio, Txt2ImgRequest

from .common import GPU, ResultPanel, Sampler, gallery_items, read_png_recipe, recipes_json, result_panel, sampler_controls, stream

ASPECTS = {"1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4), "3:2": (3, 2), "2:3": (2, 3), "16:9": (16, 9), "9:16": (9, 16)}


def aspect_size(base: int, aspect: str, low: int, high: int) -> tuple[int, int]:
    """Width and height of about base² pixels in the given aspect ratio, multiples of 8, within limits."""
    w, h = ASPECTS[aspect]
    scale = (base * base / (w * h)) ** 0.5
    fit = lambda v: int(min(max(round(v * scale / 8) * 8, low), high))  # noqa: E731
    return fit(w), fit(h)


@dataclass
class Txt2ImgTab:
    prompt: gr.Textbox
    generate: gr.Button
    stop: gr.Button
    results: ResultPanel


def render(studio: Studio, model: gr.Dropdown) -> Txt2ImgTab:
    preset = studio.preset(model.value)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            prompt = gr.Textbox(
                label="Prompt",
                placeholder="a large blue triangle on a white background",
                lines=3,
                max_length=2000,
                elem_id="txt2img-prompt",
            )
            negative = gr.Textbox("", label="Negative prompt", placeholder="what to avoid", lines=1, max_length=2000)
            with gr.Row():
                generate = gr.Button("Generate", variant="primary", elem_id="txt2img-generate", scale=3)
                stop = gr.Button("Stop", variant="stop", elem_id="txt2img-stop", scale=1)
            gr.Markdown("<kbd>Ctrl</kbd>+<kbd>Enter</kbd> generates · <kbd>Esc</kbd> stops", elem_classes="hint")
            with gr.Row():
                aspect = gr.Radio(list(ASPECTS), value="1:1", label="Aspect ratio")
                num_images = gr.Slider(1, studio.settings.max_images, 1, step=1, label="Images")
            sampler: Sampler = sampler_controls(studio, model.value)
            with gr.Accordion("Advanced", open=False):
                with gr.Row():
                    width = gr.Slider(preset.min_size, preset.max_size, preset.width, step=8, label="Width")
                    height = gr.Slider(preset.min_size, preset.max_size, preset.height, step=8, label="Height")
                rescale = gr.Slider(0, 1, 0, step=0.05, label="Guidance rescale (0.7 tames over-exposed colours)")
                restore = gr.File(label="Restore settings from an Atelier PNG", file_types=[".png"], type="filepath")
        with gr.Column(scale=6, min_width=320):
            results = result_panel(exclude="")

    def run(
        prompt: str,
        negative_prompt: str = "",
        seed: float = -1,
        steps: float = 20,
        guidance_scale: float = 5.0,
        width: float = 64,
        height: float = 64,
        num_images: float = 1,
        scheduler: str = "Euler a",
        model: str = "shapes",
        guidance_rescale: float = 0.0,
        progress=gr.Progress(),
    ):
        """Generate images from a text prompt; returns the images (PNG with recipe) and their recipes."""
        request = Txt2ImgRequest(
            model=model,
            prompt=prompt,
            negative_prompt=negative_prompt,
            seed=seed,
            steps=steps,
            guidance_scale=guidance_scale,
            width=width,
            height=height,
            num_images=num_images,
            scheduler=scheduler,
            guidance_rescale=guidance_rescale,
        )
        result = yield from stream(lambda: studio.txt2img(request), progress)
        yield gallery_items(result), recipes_json(result)

    inputs = [prompt, negative, sampler.seed, sampler.steps, sampler.guidance, width, height, num_images]
    inputs += [sampler.scheduler, model, rescale]
    # Every input here is a plain value that Txt2ImgRequest checks itself, naming the field; Gradio's own
    # slider and dropdown checks would answer first, without the name ("Value 0 is less than minimum value 1.").
    event = generate.click(
        run,
        inputs,
        [results.gallery, results.recipes],
        api_name="txt2img",
        concurrency_id=GPU,
        concurrency_limit=1,
        preprocess=False,
    )
    stop.click(None, None, None, cancels=[event], api_visibility="private", queue=False)

    def reuse(recipes: list | None):
        if not recipes:
            raise gr.Error("No image yet whose seed could be reused.")
        return recipes[0]["seed"]

    sampler.reuse_seed.click(reuse, results.recipes, sampler.seed, api_visibility="private", queue=False)

    def choose_aspect(aspect: str, model: str):
        p = studio.preset(model)
        return aspect_size(max(p.width, p.height), aspect, p.min_size, p.max_size)

    aspect.change(choose_aspect, [aspect, model], [width, height], api_visibility="private", queue=False)

    def restore_settings(path: str | None):
        recipe = read_png_recipe(path)
        if recipe is None:
            return [gr.skip()] * 9
        if recipe.get("model") not in studio.model_names:
            raise gr.Error(f"That image was made with {recipe.get('model')!r}, which this server does not offer.")
        gr.Info("Settings restored from the image's recipe.")
        return (
            recipe["prompt"],
            recipe.get("negative_prompt", ""),
            recipe["seed"],
            recipe["steps"],
            recipe["guidance_scale"],
            recipe["width"],
            recipe["height"],
            recipe["scheduler"],
            recipe["model"],
        )

    restore.upload(
        restore_settings,
        restore,
        [prompt, negative, sampler.seed, sampler.steps, sampler.guidance, width, height, sampler.scheduler, model],
        api_visibility="private",
    )

    def follow_model(name: str):
        p = studio.preset(name)
        return (
            gr.Slider(p.min_size, p.max_size, value=p.width),
            gr.Slider(p.min_size, p.max_size, value=p.height),
            p.steps,
            p.guidance,
            gr.Dropdown(list(p.schedulers), value=p.scheduler),
        )

    model.change(
        follow_model, model, [width, height, sampler.steps, sampler.guidance, sampler.scheduler], api_visibility="private"
    )
    return Txt2ImgTab(prompt, generate, stop, results)
