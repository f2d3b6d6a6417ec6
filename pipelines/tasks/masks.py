"""Masks: any mask image to a binary mask, grown or shrunk, feathered; canvases for outpainting; and the
seam measure that tells whether a repaint shows its edges.

White (255) means "repaint". Everything here is NumPy and OpenCV on 8-bit arrays.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
from PIL import Image

from ..front.errors import ValidationError


def mask_array(mask: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """A mask of any mode as a binary uint8 array of `size` (width, height).

    A mask with real transparency is read from its alpha; otherwise from its brightness. Grey values
    are cut at half. A mask of another size is scaled to the image, never silently misaligned.
    """
    if mask.mode in ("RGBA", "LA", "PA") or (mask.mode == "P" and "transparency" in mask.info):
        rgba = mask.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        values = alpha if alpha.min() < 255 else np.asarray(rgba.convert("L"))
    else:
        values = np.asarray(mask.convert("L"))
    if values.shape[::-1] != tuple(size):
        values = cv2.resize(values, size, interpolation=cv2.INTER_NEAREST)
    return np.where(values >= 128, 255, 0).astype(np.uint8)


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def grow(binary: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate (pixels > 0) or erode (pixels < 0) by a disc."""
    if pixels > 0:
        return cv2.dilate(binary, _disc(pixels))
    if pixels < 0:
        return cv2.erode(binary, _disc(-pixels))
    return binary


def feather(binary: np.ndarray, pixels: int) -> np.ndarray:
    """A soft 0–1 mask: the binary mask blurred by `pixels` (it reaches that far outside), 1 inside."""
    soft = binary.astype(np.float32) / 255
    if pixels > 0:
        soft = cv2.GaussianBlur(soft, (0, 0), sigmaX=pixels / 2)
        soft = np.maximum(soft, binary / 255)
        soft[soft < 1 / 255] = 0  # the far tail would round to the original anyway: keep it exact
    return soft


def mask_hash(binary: np.ndarray) -> str:
    return hashlib.sha256(np.packbits(binary > 0).tobytes() + str(binary.shape).encode()).hexdigest()[:16]


def bounding_box(binary: np.ndarray, padding: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the mask plus padding, clipped to the image."""
    ys, xs = np.nonzero(binary)
    h, w = binary.shape
    return (
        max(int(xs.min()) - padding, 0),
        max(int(ys.min()) - padding, 0),
        min(int(xs.max()) + 1 + padding, w),
        min(int(ys.max()) + 1 + padding, h),
    )


def checked_mask(mask: Image.Image | None, size: tuple[int, int], grow_by: int = 0) -> np.ndarray:
    if mask is None:
        raise ValidationError("mask", "paint over the area to repaint (the mask is empty)")
    binary = grow(mask_array(mask, size), grow_by)
    if not binary.any():
        raise ValidationError("mask", "the mask is empty: paint over the area to repaint")
    return binary


def extend_canvas(image: Image.Image, left: int, right: int, top: int, bottom: int) -> tuple[Image.Image, Image.Image]:
    """A larger canvas with the image in place and the new border filled from its edges, plus the
    mask of the new border."""
    array = np.asarray(image.convert("RGB"))
    canvas = cv2.copyMakeBorder(array, top, bottom, left, right, cv2.BORDER_REPLICATE)
    mask = np.full(canvas.shape[:2], 255, np.uint8)
    mask[top : top + array.shape[0], left : left + array.shape[1]] = 0
    return Image.fromarray(canvas), Image.fromarray(mask, "L")


def fill_masked(image: np.ndarray, binary: np.ndarray, mode: str, rng: np.random.Generator) -> np.ndarray:
    """What the masked area starts from: the original, the surroundings flowed in, or noise."""
    if mode == "fill":
        return cv2.inpaint(image, binary, 5, cv2.INPAINT_TELEA)
    if mode == "noise":
        noisy = image.copy()
        noisy[binary > 0] = rng.integers(0, 256, size=(int((binary > 0).sum()), 3), dtype=np.uint8)
        return noisy
    return image


def _rings(binary: np.ndarray, width: int = 2) -> tuple[np.ndarray, np.ndarray]:
    inside = binary > 0
    outer = cv2.dilate(binary, _disc(width)) > 0
    inner = cv2.erode(binary, _disc(width)) > 0
    return inside & ~inner, outer & ~inside


def seam_score(image: np.ndarray, binary: np.ndarray, window: int = 7) -> float:
    """Colour jump across the mask border: at each border pixel, the distance (Lab) between the mean
    colour just inside and just outside, averaged. 0 means no visible edge."""
    inner, outer = _rings(binary)
    if not inner.any() or not outer.any():
        return 0.0
    lab = _lab(image)

    def local_mean(ring: np.ndarray) -> np.ndarray:
        weight = cv2.boxFilter(ring.astype(np.float32), -1, (window, window), normalize=False)
        total = cv2.boxFilter(lab * ring[..., None], -1, (window, window), normalize=False)
        return total / np.maximum(weight, 1e-6)[..., None], weight

    (mean_in, w_in), (mean_out, w_out) = local_mean(inner), local_mean(outer)
    border = (w_in > 0) & (w_out > 0) & (inner | outer)
    if not border.any():
        return 0.0
    return float(np.linalg.norm(mean_in[border] - mean_out[border], axis=-1).mean())


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)


def _shifted(generated: np.ndarray, shift: np.ndarray, binary: np.ndarray, reach: float, full: int = 0) -> np.ndarray:
    """Add a Lab shift (one colour, or one per pixel): whole outside the mask and over the first `full`
    pixels inside its border, then fading inward over `reach` pixels, so what was asked for in the
    middle of the mask keeps its colour."""
    depth = cv2.distanceTransform((binary > 0).astype(np.uint8), cv2.DIST_L2, 3)
    weight = np.exp(-np.maximum(depth - full, 0) / reach)[..., None]
    corrected = np.clip(_lab(generated) + shift * weight, 0, 255).astype(np.uint8)
    return cv2.cvtColor(corrected, cv2.COLOR_LAB2RGB)


def match_colour(generated: np.ndarray, original: np.ndarray, binary: np.ndarray, reach: float = 8.0) -> np.ndarray:
    """Shift the generated region's colour so its edge matches the original's surroundings: one shift
    (difference of Lab means across the border) for the whole region — the cure for a colour cast."""
    inner, outer = _rings(binary, width=3)
    if not inner.any() or not outer.any():
        return generated
    shift = _lab(original)[outer].mean(axis=0) - _lab(generated)[inner].mean(axis=0)
    return _shifted(generated, shift, binary, reach)


def blend_edge(
    generated: np.ndarray, original: np.ndarray, binary: np.ndarray, reach: float = 3.0, along: float = 3.0
) -> np.ndarray:
    """Correct the generated colour along the mask border point by point — the cure for a halo that
    differs from place to place (a dark band just inside the edge over a light background, none over a
    dark one), which one global shift cannot lower.

    At each place the shift is the original's colour just outside minus the generated colour just
    inside, each a normalised Gaussian average over its ring (`along` pixels), so the field is smooth
    along the border and reaches inward. It is whole across the inner ring the seam is measured on (the
    band sits there) and fades over `reach` pixels beyond it.
    """
    width = 2
    inner, outer = _rings(binary, width)
    if not inner.any() or not outer.any():
        return generated

    def ring_colour(lab: np.ndarray, ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weight = cv2.GaussianBlur(ring.astype(np.float32), (0, 0), sigmaX=along)
        total = cv2.GaussianBlur(lab * ring[..., None], (0, 0), sigmaX=along)
        return total / np.maximum(weight, 1e-6)[..., None], weight

    (outside, w_out), (inside, w_in) = ring_colour(_lab(original), outer), ring_colour(_lab(generated), inner)
    # Only inside the mask (the generated pixels just outside already match the original, and the
    # composite blends them), and only near both rings, where the averages mean something.
    near = (binary > 0) & (w_out > 1e-3) & (w_in > 1e-3)
    return _shifted(generated, (outside - inside) * near[..., None], binary, reach, full=width)


def composite(original: np.ndarray, generated: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """Blend in pixel space; where the soft mask is 0 the original bytes are kept exactly."""
    blended = original * (1 - soft[..., None]) + generated * soft[..., None]
    out = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return np.where(soft[..., None] > 0, out, original)
