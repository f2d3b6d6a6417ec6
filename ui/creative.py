"""Styles and LoRAs, the same in every tab: the style picker, a row per picked LoRA with its weight, and
saving a tab's settings as a style.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from pipelines import (
    ModelPreset,
    Studio,
    Style,
    ValidationError,
)

from .controls import Controls
from .messages import said

LORA_HINT = "Each picked LoRA gets a weight, −2…2; in a prompt, <lora:name:weight> does the same."


def picked_loras(rows) -> list[list]:
    """The picked LoRAs as [name, weight] rows, whatever shape they came in (a recipe's, a style's)."""
    rows = rows.get("data", []) if isinstance(rows, dict) else rows or []
    return [[str(r[0]), r[1] if len(r) > 1 and isinstance(r[1], (int, float)) else 1.0]
            for r in rows if isinstance(r, (list, tuple)) and r and r[0]]


STYLE_SETTINGS = ("scheduler", "steps", "guidance_scale", "width", "height", "loras")  # what a style may set in a tab


def creative_controls(controls: Controls, studio: Studio, model: gr.Dropdown) -> None:
    """Styles and LoRAs, the same in every tab. Picking a style puts its settings into the tab's controls
    (its template wraps the prompt when the task runs); each LoRA has its own weight; the tab's settings
    can be saved as a style. Choices follow the model: only the LoRAs that fit it are offered."""
    preset = studio.preset(model.value)

    def style_names(p: ModelPreset) -> list[str]:
        return list(studio.styles_for(p.name))

    styles = controls.add(
        "styles",
        gr.Dropdown(style_names(preset), value=[], multiselect=True, label="Styles", elem_classes="styles-picker"),
        lambda p, v: gr.Dropdown(choices=style_names(p), value=[s for s in (v or []) if s in style_names(p)]),
    )
    adder = controls.helper(
        "add_lora",
        gr.Dropdown(list(studio.loras(preset.name)), value=None, label="Add a LoRA", info=LORA_HINT,
                    elem_classes="lora-adder"),
        lambda p, v: gr.Dropdown(choices=list(studio.loras(p.name)), value=None),
    )
    # The picked LoRAs, [[name, weight], …]: the request's field (and the API's), shown as a row each below.
    loras = controls.add("loras", gr.JSON([], visible=False, label="LoRAs"))

    @gr.render(inputs=loras)
    def lora_rows(rows):
        for lora, weight in picked_loras(rows):
            with gr.Row(equal_height=True, elem_classes="lora-row", key=f"lora-row-{lora}"):
                slider = gr.Slider(-2, 2, weight, step=0.05, label=lora, info="weight (0 = off)", interactive=True, scale=5,
                                   key=f"lora-weight-{lora}")
                remove = gr.Button("Remove", size="sm", scale=0, min_width=90, elem_classes="lora-remove",
                                   key=f"lora-remove-{lora}")
            # `release`: the end of a drag or a typed number, not every step of the drag.
            slider.release(lambda rows, w, lora=lora: [[n, w if n == lora else v] for n, v in picked_loras(rows)],
                           [loras, slider], loras, api_visibility="private", queue=False)
            remove.click(lambda rows, lora=lora: [[n, v] for n, v in picked_loras(rows) if n != lora],
                         loras, loras, api_visibility="private", queue=False)

    with gr.Row(equal_height=True):
        name = gr.Textbox(label="Save these settings as a style", placeholder="a name", scale=3, elem_classes="style-name")
        save = gr.Button("Save style", size="sm", scale=1, elem_classes="style-save")

    def add(rows, lora):
        rows = picked_loras(rows)
        if lora and lora not in [r[0] for r in rows]:
            rows.append([lora, 1.0])
        return rows, None

    adder.input(add, [loras, adder], [loras, adder], api_visibility="private", queue=False)

    settable = {n: c for n, c in controls.fields.items() if n in STYLE_SETTINGS}

    def pick(names: list[str], model_name: str) -> dict:
        offered = studio.styles_for(model_name)
        settings: dict[str, Any] = {}
        for style in names or []:
            if style in offered:
                settings.update(offered[style].settings)
        if settings.get("model") and settings["model"] != model_name and settings["model"] in studio.model_names:
            gr.Info(said(f"{', '.join(names)} was saved with the model {settings['model']!r}: choose it above to match."))
        updates = {component: gr.skip() for component in settable.values()}  # an empty dict reads as one value
        return {**updates, **{settable[n]: v for n, v in settings.items() if n in settable}}

    styles.input(pick, [styles, model], list(settable.values()), api_visibility="private")

    saved_from = {n: c for n, c in controls.fields.items() if n in ("prompt", "negative_prompt", *STYLE_SETTINGS)}

    def save_style(style_name: str, model_name: str, *values) -> dict:
        given = dict(zip(saved_from, values))
        settings = {n: v for n, v in given.items() if n in STYLE_SETTINGS}
        settings["loras"] = picked_loras(settings.get("loras"))
        try:
            style = Style.from_dict(
                {"name": style_name, "prompt": given.get("prompt") or "{prompt}",
                 "negative_prompt": given.get("negative_prompt") or "", "settings": {"model": model_name, **settings}}
            )
            studio.styles.save(style)
        except ValidationError as e:
            raise gr.Error(said(e), print_exception=False) from None
        gr.Info(said(f"Style {style.name!r} saved."))
        return gr.Dropdown(choices=list(studio.styles_for(model_name)))

    controls.style_saved = save.click(
        save_style, [name, model, *saved_from.values()], styles, api_visibility="private"
    )
