"""A tab's controls. Each request field's control is made from its one declaration (`pipelines.settings_of`):
the label, the help line, the range, the step and the default the page shows are those validation and the
API use; a tab keeps its own layout and only asks for the control of a field. `Controls` holds a tab's
controls under the names of the request fields they fill, and how the model-dependent ones follow the
model; the controls every tab has (sampler, size, prompt, buttons) are made here too."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import gradio as gr

from pipelines import Limits, ModelPreset, Request, settings_of


def control(
    request_type: type[Request],
    name: str,
    limits: Limits,
    preset: ModelPreset | None = None,
    *,
    labels: dict[str, str] | None = None,
    **kw: Any,
) -> gr.components.Component:
    """The control of `request_type`'s field `name` within `limits` (the model's and the server's).

    preset: the model shown; a field that follows the model (steps, width…) starts at its value.
    labels: for a choice, the words shown for each value (a radio); without, a dropdown of the values.
    kw: layout only (scale, elem_id, min_width…), and `value` where a tab prefers one of the model's choices
        (Morph's non-ancestral sampler).
    """
    setting = settings_of(request_type)[name]
    value = getattr(preset, setting.preset) if setting.preset and preset is not None else setting.default
    value = kw.pop("value", value)
    shown = dict(label=setting.label, info=setting.help or None, **kw)
    low, high = setting.bounds(limits)
    if setting.kind == "bool":
        return gr.Checkbox(value, **shown)
    if setting.kind == "choice":
        options = setting.options(limits)
        if labels:
            return gr.Radio([(labels[v], v) for v in options], value=value, **shown)
        return gr.Dropdown(list(options), value=value, **shown)
    if setting.kind == "seed":
        return gr.Number(value, precision=0, minimum=low, maximum=high, **shown)
    if setting.kind in ("int", "size", "float"):
        return gr.Slider(low, high, value, step=setting.step, **shown)
    raise TypeError(f"{request_type.__name__}.{name} is {setting.kind}: its box is laid out by the tab")


def described(request_type: type[Request]) -> str:
    """A task's docstring for the API page and MCP tools: what it does, then each declared setting with the
    page's words, its range and default (Google style, which Gradio reads for parameter descriptions)."""
    own = request_type.__doc__ or ""
    if own.startswith(f"{request_type.__name__}("):  # the signature a dataclass writes when it has no docstring
        own = sys.modules[request_type.__module__].__doc__ or ""  # the task module's own first words
    summary = own.strip().split("\n\n")[0] or f"Run the {request_type.task} task."
    lines = [summary, "", "Args:"]
    for name, setting in settings_of(request_type).items():
        facts = [setting.label]
        if setting.help:
            facts.append(setting.help)
        if isinstance(setting.minimum, (int, float)) and isinstance(setting.maximum, (int, float)):
            facts.append(f"{setting.minimum} to {setting.maximum}")
        if isinstance(setting.choices, tuple) and setting.choices:
            facts.append("one of " + ", ".join(setting.choices))
        elif isinstance(setting.choices, str):
            facts.append(f"one of the server's {setting.choices}")
        if setting.preset:
            facts.append("default: the model's own")
        elif setting.default is not dataclasses.MISSING:
            facts.append(f"default {setting.default!r}")
        lines.append(f"    {name}: " + "; ".join(facts))
    return "\n".join(lines)


class Declared:
    """The controls of one request type for the model a tab starts with: `declared("strength")`."""

    def __init__(self, request_type: type[Request], limits: Limits, preset: ModelPreset | None = None):
        self.request_type, self.limits, self.preset = request_type, limits, preset

    def __call__(self, name: str, **kw: Any) -> gr.components.Component:
        return control(self.request_type, name, self.limits, self.preset, **kw)


Follow = Callable[[ModelPreset, Any], Any]  # (the model chosen, a value to keep or None) → the control's update


class Controls:
    """A tab's settings, each under the name of the request field it fills: the event that runs the
    task passes them by name, restoring a recipe fills them by name, and those that depend on the model
    say how they follow it."""

    def __init__(self) -> None:
        self.fields: dict[str, gr.components.Component] = {}
        self.helpers: dict[str, gr.components.Component] = {}  # follow the model but fill no field (a LoRA adder)
        self._follow: dict[str, Follow] = {}
        self.style_saved = None  # the event of "Save style", for the page to refresh every tab's styles after it

    def add(self, name: str, component, follow: Follow | None = None):
        self.fields[name] = component
        if follow is not None:
            self._follow[name] = follow
        return component

    def helper(self, name: str, component, follow: Follow):
        """A control that follows the model without being a request field."""
        self.helpers[name] = component
        self._follow[name] = follow
        return component

    def _component(self, name: str):
        return self.fields.get(name) or self.helpers[name]

    @property
    def following(self) -> list:
        return [self._component(name) for name in self._follow]

    def follow(self, preset: ModelPreset, values: dict[str, Any] | None = None) -> dict:
        """Updates of the model-dependent controls for `preset`: its limits, choices and defaults, or
        the given values where they fit."""
        values = values or {}
        return {self._component(name): follow(preset, values.get(name)) for name, follow in self._follow.items()}

    def restore(self, preset: ModelPreset, values: dict[str, Any]) -> dict:
        """Updates that put a recipe's values into every control that has a field of that name."""
        updates = {component: values[name] for name, component in self.fields.items() if name in values}
        return {**updates, **self.follow(preset, values)}


def sampler_controls(
    controls: Controls, preset: ModelPreset, limits: Limits, *, scheduler: str | None = None,
    request_type: type[Request] = Request,
) -> gr.Button:
    """Seed, steps, guidance and scheduler, the controls every generating tab has; the steps, guidance
    and scheduler follow the model (the model's defaults their declarations name). Returns the "Reuse
    last" button for the tab to wire."""
    declared = Declared(request_type, limits, preset)
    settings = settings_of(request_type)

    def own(p: ModelPreset, name: str):
        return getattr(p, settings[name].preset)

    def pick(p: ModelPreset, value: str | None) -> str:
        return next((s for s in (value, scheduler) if s in p.schedulers), own(p, "scheduler"))

    with gr.Row(equal_height=True):
        seed = controls.add("seed", declared("seed", scale=3))
        random_seed = gr.Button("Random", size="sm", scale=0, min_width=80)
        reuse_seed = gr.Button("Reuse last", size="sm", scale=0, min_width=96)
    controls.add("steps", declared("steps"), lambda p, v: gr.Slider(value=own(p, "steps") if v is None else v))
    controls.add(
        "guidance_scale", declared("guidance_scale"),
        lambda p, v: gr.Slider(value=own(p, "guidance_scale") if v is None else v),
    )
    controls.add(
        "scheduler",
        declared("scheduler", value=pick(preset, None)),
        lambda p, v: gr.Dropdown(list(p.schedulers), value=pick(p, v)),
    )
    random_seed.click(lambda: -1, None, seed, api_visibility="private", queue=False)
    return reuse_seed


def negative_and_sampler(
    controls: Controls, preset: ModelPreset, limits: Limits, *, scheduler: str | None = None,
    request_type: type[Request] = Request,
) -> gr.Button:
    """What a tab's Advanced section starts with: the negative prompt and the sampler controls."""
    controls.add("negative_prompt", prompt_box("Negative prompt", "what to avoid", lines=1))
    return sampler_controls(controls, preset, limits, scheduler=scheduler, request_type=request_type)


def columns() -> tuple[gr.Column, gr.Column]:
    """A tab's two columns: its settings on the left, its results on the right. On a phone they stack,
    and the results come right after the main button, before the rest of the settings (see CSS)."""
    with gr.Row(equal_height=False, elem_classes="tab-body"):
        settings = gr.Column(scale=5, min_width=320, elem_classes="settings")
        return settings, gr.Column(scale=6, min_width=320, elem_classes="output")


def size_controls(controls: Controls, declared: Declared) -> None:
    """Width and height sliders within the model's limits, at its size; they follow the model."""
    for name in ("width", "height"):
        controls.add(
            name,
            declared(name),
            lambda p, v, name=name: gr.Slider(p.min_size, p.max_size, value=getattr(p, name) if v is None else v),
        )


def prompt_box(label: str = "Prompt", placeholder: str = "", *, required: bool = False, **kw) -> gr.Textbox:
    """A text box for a prompt; a required one has no default in the HTTP API. No `max_length`: the browser
    would cut a long paste without a word; the server refuses it, saying how long it is, and the text stays."""
    return gr.Textbox(None if required else "", label=label, placeholder=placeholder, **{"lines": 2, **kw})


def run_buttons(task: str, label: str) -> tuple[gr.Button, gr.Button]:
    """The tab's main button (Ctrl+Enter presses it) and its Stop (Esc)."""
    with gr.Row(elem_classes="run-row"):
        go = gr.Button(label, variant="primary", elem_id=f"{task}-generate", scale=3)
        stop = gr.Button("Stop", variant="stop", elem_id=f"{task}-stop", scale=1)
    return go, stop
