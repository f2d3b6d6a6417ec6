"""The result panel: the gallery of PNGs with their recipes, the live preview apart from it, the status
line, and the files the page serves (written once, whole).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from PIL import Image

from pipelines import (
    Recipe,
    Result,
    write_whole,
)

from .controls import Controls
from .messages import said, slip


def seed_caption(recipe: Recipe) -> str:
    return f"seed {recipe.seed}"


@dataclass
class ResultPanel:
    """A gallery of PNGs with recipes, the selected image, a status line (notices, "Stopped"), the live
    preview of a running job (apart from the gallery: the results stay until new ones replace them), a
    row for "Send to" buttons and "Restore settings" (from an Atelier PNG), and the offer to restore
    that shows when such a PNG is dropped on one of the tab's image areas."""

    gallery: gr.Gallery
    recipes: gr.JSON
    selected: gr.State
    send_row: gr.Row
    restore: gr.UploadButton  # also where an Atelier PNG dropped on a prompt goes (the page's script)
    status: gr.Markdown
    live: gr.Image
    offer: gr.Group  # "This picture was made in Atelier … [Restore its settings]", shown after such a drop
    offer_text: gr.Markdown
    offer_drop: gr.File
    offer_accept: gr.Button
    offer_dismiss: gr.Button
    caption: Callable[[Recipe], str] = seed_caption
    extra: list = field(default_factory=list)  # outputs besides the gallery (Morph's video and files)
    extra_values: Callable[[Result], tuple] = lambda result: ()

    @property
    def outputs(self) -> list:
        """What the HTTP API returns."""
        return [self.gallery, *self.extra, self.recipes]

    @property
    def page_outputs(self) -> list:
        """What a run updates in the page: the API's outputs, the status line and the live preview."""
        return [*self.outputs, self.status, self.live]

    def present(self, result: Result) -> tuple:
        # The files as saved (recipe inside, signed), so a download or an API client gets exactly those.
        pictures = [served(png, f"{r.image_id}.png") for png, r in zip(result.pngs, result.recipes)] or result.images
        items = [(picture, self.caption(recipe)) for picture, recipe in zip(pictures, result.recipes)]
        return (items, *self.extra_values(result), [r.to_dict() for r in result.recipes])

    def show(self, result: Result) -> tuple:
        """The page after a run: the whole batch in a grid that fits it, what the person should know, no
        preview."""
        items, *rest = self.present(result)
        gallery = gr.Gallery(items, columns=grid_columns(len(items)), selected_index=None)
        return (gallery, *rest, notices_text(result.notices), gr.Image(None, visible=False))

    def show_preview(self, picture: Image.Image) -> tuple:
        """The page while a job runs: its newest preview; the previous results stay as they are."""
        return (*[gr.skip()] * len(self.outputs), gr.skip(), gr.Image(picture, visible=True))

    def starting(self) -> tuple:
        """The page as a run starts: last run's notices cleared."""
        return (*[gr.skip()] * len(self.outputs), "", gr.skip())

    def stopped(self) -> tuple:
        """Status and preview after Stop: the half-made picture goes, the previous results stay."""
        return "Stopped. The results shown are from the run before.", gr.Image(None, visible=False)

    def failed(self, message: str) -> tuple:
        """The page after a run that could not be made: the results stay as they were (no error over
        them), the half-made picture goes, and the status line keeps what went wrong."""
        return (*[gr.skip()] * len(self.outputs), f"**Not made:** {message}", gr.Image(None, visible=False))


def served(data: bytes, name: str) -> str:
    """An image file's bytes as a file in gradio's cache, for a gallery or an image to show as they are.
    Written once, whole: gradio saves a PIL image by rewriting the same cached file in place each time it
    is shown, and a browser still fetching that file meanwhile gets a short read."""
    path = Path(get_upload_folder()) / hashlib.sha256(data).hexdigest() / name
    if not path.exists():
        write_whole(path, data)
    return str(path)


def grid_columns(count: int) -> int:
    """Columns that show `count` images whole at a glance: 1, 2 (up to 4), 3 (up to 9), then 4."""
    return 1 if count <= 1 else 2 if count <= 4 else 3 if count <= 9 else 4


def notices_text(notices: tuple[str, ...]) -> str:
    return "\n".join(f"- {said(notice)}" for notice in notices)


def result_panel(label: str = "Results", caption: Callable[[Recipe], str] = seed_caption) -> ResultPanel:
    with gr.Group(visible=False, elem_classes="restore-offer") as offer:
        offer_text = gr.Markdown(padding=True)
        with gr.Row():
            offer_accept = gr.Button("Restore its settings", size="sm", variant="primary")
            offer_dismiss = gr.Button("No, thanks", size="sm")
    # Where the page's script puts a PNG given to one of the tab's image areas (an editor re-draws what it
    # is given, so its own value has lost the recipe): never shown.
    offer_drop = gr.File(file_types=[".png"], type="filepath", label="Dropped picture", elem_classes="offer-drop")
    status = gr.Markdown("", elem_classes="status")
    live = gr.Image(
        label="Preview (still forming)",
        show_label=False,
        visible=False,
        interactive=False,
        height=320,
        buttons=[],
        elem_classes="live-preview",
    )
    gallery = gr.Gallery(
        label=label,
        show_label=False,  # the label chip would sit over the first image
        format="png",  # lossless, and the recipe travels in the PNG's text chunks
        columns=2,
        height="auto",  # the whole batch shows, never a scroll box inside the page
        object_fit="contain",
        buttons=["download", "fullscreen"],
        interactive=False,
        elem_classes="results",
    )
    send_row = gr.Row(elem_classes="send-row")  # the page adds a "Send to" button for every other tab
    with gr.Row(elem_classes="restore-row"):
        restore = gr.UploadButton(
            "Restore settings from a PNG…",
            file_types=[".png"],
            type="filepath",
            size="sm",
            variant="secondary",
        )
    with gr.Accordion("Recipes", open=False):
        recipes = gr.JSON(label="Recipe of each image", value=[])
    selected = gr.State(0)

    def remember(evt: gr.SelectData) -> int:
        return evt.index

    gallery.select(remember, None, selected, api_visibility="private", queue=False)
    offers = dict(offer=offer, offer_text=offer_text, offer_drop=offer_drop, offer_accept=offer_accept,
                  offer_dismiss=offer_dismiss)
    return ResultPanel(gallery, recipes, selected, send_row, restore, status, live, caption=caption, **offers)


def reuse_last_seed(button: gr.Button, controls: Controls, panel: ResultPanel) -> None:
    """ "Reuse last" puts the seed of the panel's first result into the seed box."""

    seed = controls.fields["seed"]

    def reuse(recipes: list | None):
        if not recipes:
            return slip("No image yet whose seed could be reused.", [seed])
        return recipes[0]["seed"]

    button.click(reuse, panel.recipes, seed, api_visibility="private")
