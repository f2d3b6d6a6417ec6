"""Text to image: a prompt in, a gallery of PNGs with recipes out, with live previews and Stop."""

from __future__ import annotations

import gradio as gr

from pipelines import Studio, Txt2ImgRequest

from ..controls import Controls, Declared, columns, prompt_box, run_buttons, sampler_controls, size_controls
from ..creative import creative_controls
from ..events import Tab, finish_tab, task_events
from ..results import result_panel

TITLE = "Text to image"
ASPECTS = {"1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4), "3:2": (3, 2), "2:3": (2, 3), "16:9": (16, 9), "9:16": (9, 16)}
# The HTTP API's parameters, in order (`model` is the page's picker).
API = ("prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height", "num_images", "scheduler")
API += ("model", "guidance_rescale", "loras", "styles", "hires", "hires_scale", "hires_detail", "hires_steps")
API += ("feature_reuse",)


def aspect_size(base: int, aspect: str, low: int, high: int) -> tuple[int, int]:
    """Width and height of about base² pixels in the given aspect ratio, multiples of 8, within limits."""
    w, h = ASPECTS[aspect]
    scale = (base * base / (w * h)) ** 0.5
    fit = lambda v: int(min(max(round(v * scale / 8) * 8, low), high))  # noqa: E731
    return fit(w), fit(h)


def render(studio: Studio, model: gr.Dropdown) -> Tab:
    preset, limits = studio.preset(model.value), studio.limits(model.value)
    declared = Declared(Txt2ImgRequest, limits, preset)
    controls = Controls()
    settings, output = columns()
    with settings:
        placeholder = "a large blue triangle on a white background"
        prompt = prompt_box(placeholder=placeholder, required=True, lines=3, elem_id="txt2img-prompt")
        controls.add("prompt", prompt)
        controls.add("negative_prompt", prompt_box("Negative prompt", "what to avoid", lines=1))
        generate, stop = run_buttons("txt2img", "Generate")
        gr.Markdown("<kbd>Ctrl</kbd>+<kbd>Enter</kbd> generates · <kbd>Esc</kbd> stops", elem_classes="hint")
        aspect = gr.Radio(list(ASPECTS), value="1:1", label="Aspect ratio")
        controls.add("num_images", declared("num_images"))
        with gr.Accordion("Hires: upscale in the same run", open=False, elem_id="txt2img-hires"):
            controls.add("hires", declared("hires"), lambda p, v: gr.Checkbox(value=p.cascade if v is None else v))
            with gr.Row():
                controls.add("hires_scale", declared("hires_scale"))
                controls.add("hires_detail", declared("hires_detail"),
                             lambda p, v: gr.Slider(value=p.upscale_detail if v is None else v))
                controls.add("hires_steps", declared("hires_steps"),
                             lambda p, v: gr.Slider(value=p.upscale_steps if v is None else v))
        reuse = sampler_controls(controls, preset, limits)
        creative_controls(controls, studio, model)
        with gr.Accordion("Advanced", open=False):
            with gr.Row():
                size_controls(controls, declared)
            controls.add("guidance_rescale", declared("guidance_rescale"))
            controls.add("feature_reuse", declared("feature_reuse"))
    with output:
        results = result_panel()

    # The HTTP API's parameters keep their order; the optional `parent` (for the Library's lineage) comes last.
    fields = {name: model if name == "model" else controls.fields[name] for name in API}
    event = task_events(studio, Txt2ImgRequest, results, generate, fields, fields)

    def choose_aspect(aspect: str, model: str):
        p = studio.preset(model)
        return aspect_size(p.native_size, aspect, p.min_size, p.max_size)

    sizes = [controls.fields["width"], controls.fields["height"]]
    aspect.change(choose_aspect, [aspect, model], sizes, api_visibility="private", queue=False)
    return finish_tab(TITLE, controls, results, stop=stop, events=[event], reuse=reuse)
