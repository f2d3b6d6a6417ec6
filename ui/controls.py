"""A request field's control, made from its one declaration (`pipelines.settings_of`): the label, the
help line, the range, the step and the default the page shows are those validation and the API use.
A tab keeps its own layout and only asks for the control of a field."""

from __future__ import annotations

import dataclasses
import sys
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
