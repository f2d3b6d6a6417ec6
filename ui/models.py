"""The model picker's words and the residency panel: which models are in memory, what choosing one costs,
and Unload / Keep loaded for the row the person clicked."""

from __future__ import annotations

import gradio as gr

from pipelines import ModelState, Studio

from .events import GPU

COLUMNS = ["Model", "State", "Memory", "Kept loaded"]


def availability(state: ModelState) -> str:
    """What choosing the model means, in plain words."""
    if state.state == "resident":
        return "in memory"
    if state.state == "load from disk":
        return "on disk"
    if state.state == "download":
        return f"will download (about {state.download_gb:.1f} GB)" if state.download_gb else "will download"
    return state.state  # "not available offline"


def picker_choices(studio: Studio) -> list[tuple[str, str]]:
    """Each model's label with whether it is here, will download (and how much), or cannot be had."""
    return [(f"{studio.preset(m.model).label} · {availability(m)}", m.model) for m in studio.residency()]


def table(studio: Studio) -> list[list[str]]:
    return [
        [
            studio.preset(m.model).label,
            availability(m) + (f" ({m.device}, {m.dtype})" if m.state == "resident" else ""),
            f"{m.megabytes:,.0f} MB" if m.state == "resident" else "—",
            "yes" if m.pinned else "no" if m.state == "resident" else "—",
        ]
        for m in studio.residency()
    ]


FOLLOW_SECONDS = 10  # how often an open page asks whether a model was loaded or unloaded elsewhere


def render(studio: Studio, picker: gr.Dropdown) -> tuple:
    """The panel under its accordion. It follows the manager by itself: every FOLLOW_SECONDS it asks and
    changes only when a model's state did. Returns the (function, inputs, outputs) that brings the panel and
    the picker's words up to date, for the page to run when it opens and after every run."""
    with gr.Accordion("Models in memory", open=False):
        gr.Markdown(
            "Loaded models stay in memory and every tab shares their weights: switching to one *in memory* is "
            "free, one *on disk* takes seconds, one that *will download* is fetched on first use. "
            "Click a row to act on that model.",
            elem_classes="hint",
        )
        grid = gr.Dataframe(table(studio), headers=COLUMNS, interactive=False, elem_id="residency")
        chosen = gr.State(picker.value)
        with gr.Row(equal_height=True):
            selected = gr.Markdown(elem_id="residency-selected")
            unload = gr.Button("Unload", size="sm", variant="secondary", elem_id="residency-unload")
            keep = gr.Button("Keep loaded", size="sm", variant="secondary", elem_id="residency-keep")
            refresh = gr.Button("Refresh", size="sm")

    def describe(name: str) -> tuple:
        """The panel for `name`: the table, which model the buttons act on, and what Keep does to it."""
        state = next(m for m in studio.residency() if m.model == name)
        label = studio.preset(name).label
        keep_label = "Let it unload" if state.pinned else "Keep loaded"
        resident = state.state == "resident"
        return (
            table(studio),
            f"**{label}** — {availability(state)}",
            gr.Button(keep_label, interactive=resident),
            gr.Button(interactive=resident),
        )

    panel = [grid, selected, keep, unload]
    with_picker = [*panel, picker]

    def update(name: str) -> tuple:
        return (*describe(name), gr.Dropdown(choices=picker_choices(studio)))

    def choose(evt: gr.SelectData) -> tuple:
        label = evt.row_value[0]
        name = next(n for n in studio.model_names if studio.preset(n).label == label)
        return (name, *update(name))

    def do_unload(name: str) -> tuple:
        if studio.unload(name):
            gr.Info(f"Unloaded {studio.preset(name).label}.")
        return update(name)

    def do_keep(name: str) -> tuple:
        pinned = next(m.pinned for m in studio.residency() if m.model == name)
        studio.pin(name, not pinned)
        return update(name)

    def follow(name: str, seen: list | None) -> tuple:
        """The panel and the picker as the manager has them now; nothing sent when nothing changed."""
        now = [[m.model, m.state, m.pinned] for m in studio.residency()]
        if now == seen:
            return (*[gr.skip()] * len(with_picker), gr.skip())
        return (*update(name), now)

    seen = gr.State(None)  # the states last shown on this page
    private = dict(api_visibility="private")
    gr.Timer(FOLLOW_SECONDS).tick(follow, [chosen, seen], [*with_picker, seen], queue=False, show_progress="hidden",
                                  **private)
    grid.select(choose, None, [chosen, *with_picker], queue=False, **private)
    unload.click(do_unload, chosen, with_picker, concurrency_id=GPU, **private)
    keep.click(do_keep, chosen, with_picker, queue=False, **private)
    refresh.click(update, chosen, with_picker, queue=False, **private)
    # Until a row is clicked, the panel acts on the model the picker shows.
    picker.change(lambda name: (name, *describe(name)), picker, [chosen, *panel], queue=False, **private)
    return follow, [chosen, seen], [*with_picker, seen]
