"""Pictures coming into a tab: uploads checked before anything is queued, the image editor's value and
mask, the picture a gallery hands to "Send to", and lineage across uploads.
"""

from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image

from pipelines import (
    image_id,
)

from .messages import NOT_AN_IMAGE


def upload_path(value) -> str | None:
    """The server-side path of an uploaded file, as a path or as Gradio's unprocessed file data."""
    return value.get("path") if isinstance(value, dict) else value


def refuse_non_image(value):
    """An upload that is not a picture (a renamed text file, a damaged PNG) is refused at once and
    cleared, rather than kept until Generate fails on it."""
    if not value:
        return gr.skip()
    try:
        with Image.open(upload_path(value)) as picture:
            picture.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        gr.Warning(NOT_AN_IMAGE)
        return None
    return gr.skip()


def editor_value(image: Image.Image) -> dict:
    """A fresh image-editor value: the image with no painted layers, so no stale strokes survive."""
    return {"background": image, "layers": [], "composite": image}


def layers_mask(layers: list | None) -> Image.Image | None:
    """An image editor's painted layers (PNG paths) → an L mask: the union of their alpha."""
    painted = None
    for layer in layers or []:
        with Image.open(layer) as picture:
            alpha = np.asarray(picture.convert("RGBA").getchannel("A")) > 0
        painted = alpha if painted is None else painted | alpha
    return None if painted is None else Image.fromarray((painted * 255).astype(np.uint8), "L")


def picked(gallery_value, recipes: list[dict] | None, index: int) -> tuple[Image.Image, str | None]:
    """The image selected in a gallery (or the first) and its id, for "Send to"."""
    if not gallery_value:
        raise gr.Error("Nothing to send yet: generate an image first.", print_exception=False)
    index = index if 0 <= (index or 0) < len(gallery_value) else 0
    item = gallery_value[index]
    path = item[0] if isinstance(item, (list, tuple)) else item
    path = path.get("path") if isinstance(path, dict) else path
    image = path if isinstance(path, Image.Image) else Image.open(path)
    image.load()
    parent = (recipes or [{}])[index].get("image_id") if recipes and index < len(recipes) else None
    return image.convert("RGB"), parent


def same_parent(value, parent: str | None) -> str | None:
    """After an upload: a new picture starts a new lineage (no parent), but the very image "Send to" put
    there keeps its id — an image editor reports the image it was handed as an upload too."""
    path = upload_path(value.get("background") if isinstance(value, dict) else value)
    if not parent or not path:
        return None
    with Image.open(path) as picture:
        return parent if image_id(picture) == parent else None


def source_image(label: str, height: int) -> gr.Image:
    """An image a task starts from, kept as a PNG file the request opens; a small one fills its frame."""
    look = dict(height=height, elem_classes=["source-image", "image-area"])
    return gr.Image(label=label, type="filepath", format="png", sources=["upload", "clipboard"], **look)


def image_editor(editor: type = gr.ImageEditor, **kw):
    """An image editor whose value comes as PNG files, which the request opens like any upload
    (checked, made RGB, scaled into the limit); no crop or resize tools, one layer."""
    return editor(
        type="filepath",
        format="png",
        layers=False,
        sources=["upload", "clipboard"],
        eraser=gr.Eraser(default_size="auto"),
        transforms=(),
        height=420,
        elem_classes="image-area",
        **kw,
    )
