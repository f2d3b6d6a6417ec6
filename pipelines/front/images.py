"""Opening what people upload: any common picture becomes RGB within the pixel limit, or a clear refusal.

The size is read from the file's header before any pixel is decoded, so a decompression bomb is refused
without costing memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ValidationError

DECODE_LIMIT = 40_000_000  # pixels: larger files are refused unopened (a 20000×20000 PNG is 400 M)
FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF")
_READABLE = "PNG, JPEG, WebP, GIF, BMP or TIFF"


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten any mode to 8-bit RGB; transparency is composited onto white, as on a page."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / top * 255, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        page = Image.new("RGB", rgba.size, (255, 255, 255))
        page.paste(rgba, mask=rgba.getchannel("A"))
        return page
    return image.convert("RGB")


def fit_pixels(image: Image.Image, max_pixels: int) -> Image.Image:
    """Scale down (never up) to at most `max_pixels`, keeping the aspect ratio."""
    pixels = image.width * image.height
    if pixels <= max_pixels:
        return image
    scale = (max_pixels / pixels) ** 0.5
    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def load_image(source: str | os.PathLike | Image.Image | None, max_pixels: int, field: str = "image") -> Image.Image:
    """An uploaded file (path) or image as RGB of at most `max_pixels`; ValidationError otherwise."""
    image = open_upload(source, field)
    try:
        return fit_pixels(_to_rgb(image), max_pixels)
    except (OSError, ValueError):
        raise ValidationError(field, "the image file is damaged or incomplete") from None


def open_upload(source: str | os.PathLike | Image.Image | None, field: str = "image") -> Image.Image:
    """An upload opened and decoded in its own mode (masks keep their alpha), upright, first frame."""
    if source is None or source == "":
        raise ValidationError(field, "an image is required")
    if isinstance(source, Image.Image):
        image = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ValidationError(field, "the upload did not arrive; try again")
        if path.stat().st_size == 0:
            raise ValidationError(field, "the file is empty")
        try:
            image = Image.open(path)
        except Image.DecompressionBombError:
            raise ValidationError(field, f"too large to open (limit {DECODE_LIMIT:,} pixels)") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise ValidationError(field, f"the file is not an image, or it is damaged (Atelier reads {_READABLE})") from None
        if image.format not in FORMATS:
            raise ValidationError(field, f"{image.format} files are not accepted; use {_READABLE}")
    if image.width * image.height > DECODE_LIMIT:
        raise ValidationError(field, f"{image.width}×{image.height} is too large to open (limit {DECODE_LIMIT:,} pixels)")
    try:
        if getattr(image, "is_animated", False):
            image.seek(0)  # animations: the first frame
        if image.format == "JPEG":
            image.draft("RGB", (image.width, image.height))
        image.load()
        return ImageOps.exif_transpose(image) or image
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValidationError(field, "the image file is damaged or incomplete") from None
