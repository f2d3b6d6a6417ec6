"""The style book: rename, delete and import the person's styles (saving is in every tab, beside the
style picker); after any change every tab's picker offers the styles as they are now."""

from __future__ import annotations

import gradio as gr

from pipelines import Studio, ValidationError

from .events import Tab
from .images import upload_path
from .messages import said


def render(studio: Studio, model: gr.Dropdown, tabs: dict[str, Tab]) -> None:
    pickers = [tab.controls.fields["styles"] for tab in tabs.values() if "styles" in tab.controls.fields]

    def own() -> list[str]:
        return [s.name for s in studio.styles.own()]

    with gr.Accordion("Your styles", open=False, elem_id="style-book"):
        where = studio.styles.path if studio.styles.writable else None
        gr.Markdown(f"Kept in `{where}`." if where else "This server keeps no styles (a public demo).")
        with gr.Row(equal_height=True):
            chosen = gr.Dropdown(own(), value=None, label="Style", scale=2, elem_id="style-book-pick")
            new_name = gr.Textbox(label="New name", scale=2, elem_id="style-book-name")
            rename = gr.Button("Rename", size="sm", scale=0, min_width=90)
            delete = gr.Button("Delete", size="sm", variant="stop", scale=0, min_width=90)
        upload = gr.File(label="Import AUTOMATIC1111's styles.csv", file_types=[".csv"], type="filepath")

    def refreshed(model_name: str) -> list:
        """The book's own list, and every tab's picker with the styles offered with the model now."""
        offered = list(studio.styles_for(model_name))
        return [gr.Dropdown(choices=own(), value=None), *(gr.Dropdown(choices=offered) for _ in pickers)]

    def act(action, message: str):
        def handler(model_name: str, *args) -> list:
            try:
                action(*args)
            except ValidationError as e:  # a refusal leaves the pickers as they are
                gr.Warning(said(e))
                return [gr.skip()] * len(outputs)
            gr.Info(said(message.format(*args)))
            return refreshed(model_name)

        return handler

    def import_csv(path) -> None:
        count = studio.styles.import_a1111(upload_path(path))
        gr.Info(f"{count} styles imported.")

    outputs = [chosen, *pickers]
    rename.click(act(studio.styles.rename, "Renamed {0!r} to {1!r}."), [model, chosen, new_name], outputs, api_visibility="private")
    delete.click(act(studio.styles.delete, "Deleted {0!r}."), [model, chosen], outputs, api_visibility="private")
    upload.upload(act(import_csv, "styles.csv read."), [model, upload], outputs, api_visibility="private")
    for tab in tabs.values():
        if tab.controls.style_saved is not None:
            tab.controls.style_saved.then(refreshed, model, outputs, api_visibility="private", queue=False)
