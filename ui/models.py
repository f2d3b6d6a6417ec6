"""The residency panel: which models are in memory, what switching costs, unload and pin."""

from __future__ import annotations

import gradio as gr

from pipelines import Studio

from .common import GPU

COLUMNS = ["model", "state", "device", "dtype", "MB", "pinned"]


def table(studio: Studio) -> list[list]:
    return [[m.model, m.state, m.device, m.dtype, m.megabytes, m.pinned] for m in studio.residency()]


def render(studio: Studio, model: gr.Dropdown) -> None:
    with gr.Accordion("Models in memory", open=False):
        gr.Markdown(
            "Loaded models stay resident and every tab shares their weights. *resident*: switching is free; "
            "*load from disk*: seconds; *download*: the first use fetches it."
        )
        grid = gr.Dataframe(table(studio), headers=COLUMNS, interactive=False, elem_id="residency")
        with gr.Row():
            refresh = gr.Button("Refresh", size="sm")
            unload = gr.Button("Unload the selected model", size="sm", variant="secondary")
            pin = gr.Checkbox(False, label="Keep the selected model loaded (pin)")

    def do_unload(name: str):
        if studio.unload(name):
            gr.Info(f"Unloaded {name}.")
        return table(studio)

    def do_pin(name: str, pinned: bool):
        studio.pin(name, pinned)
        return table(studio)

    refresh.click(lambda: table(studio), None, grid, api_visibility="private", queue=False)
    unload.click(do_unload, model, grid, api_visibility="private", concurrency_id=GPU)
    pin.change(do_pin, [model, pin], grid, api_visibility="private", queue=False)
    model.change(lambda: table(studio), None, grid, api_visibility="private", queue=False)
