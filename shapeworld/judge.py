"""Read a picture of the shape world back into its figures and their attributes, with OpenCV alone.

The judge is what the semantic tests and the quality benchmark trust, so it is itself checked against
the generator's own drawings (tests/test_shapeworld.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .world import BACKGROUNDS, COLOURS, POSITIONS

_SMALL_MAX = 0.155  # equal-area radius (fraction of side) below which a shape reads as small
_LARGE_MIN = 0.215  # …and above which it reads as large


@dataclass(frozen=True)
class Reading:
    colour: str
    shape: str
    size: str
    position: str
    background: str
    radius: float  # measured equal-area radius, fraction of side
    centre: tuple[float, float]  # bounding-box centre of the shape, fraction of side
    hue: float  # mean hue of the shape in degrees (0–360), for morph tests


_NO_SHAPE = "none"


def _nearest(value: np.ndarray, table: dict[str, tuple[int, int, int]]) -> str:
    lab = cv2.cvtColor(np.uint8([[value]]), cv2.COLOR_RGB2LAB)[0, 0].astype(float)
    best, best_d = "", math.inf
    for name, rgb in table.items():
        ref = cv2.cvtColor(np.uint8([[rgb]]), cv2.COLOR_RGB2LAB)[0, 0].astype(float)
        d = float(np.sum((lab - ref) ** 2))
        if d < best_d:
            best, best_d = name, d
    return best


def _circle_fit(mask: np.ndarray, contours: list[np.ndarray]) -> float:
    """How much of its enclosing circle the blob fills, counting only the part inside the image."""
    points = np.concatenate(contours)[:, 0]
    inner = points[(points > 0).all(axis=1) & (points < np.array(mask.shape[::-1]) - 1).all(axis=1)]
    (cx, cy), radius = cv2.minEnclosingCircle((inner if len(inner) >= 3 else points).astype(np.float32))
    disc = np.zeros_like(mask)
    cv2.circle(disc, (round(cx * 16), round(cy * 16)), round(radius * 16), 1, -1, cv2.LINE_8, shift=4)
    return float(mask.sum()) / max(float(disc.sum()), 1.0)


def _classify_shape(mask: np.ndarray) -> str:
    """Which ideal shape fits the blob best, by how much of each minimal enclosing form it fills.

    The image border clips large shapes, so the fit is measured on the blob's convex hull after
    padding: clipped edges count as straight edges, which the square and triangle fits absorb.
    """
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea)).astype(np.float32)
    area = cv2.contourArea(hull)
    if area < 4:
        return _NO_SHAPE
    (_, (w, h), _) = cv2.minAreaRect(hull)
    tri_area, _ = cv2.minEnclosingTriangle(hull)
    fits = {
        "circle": _circle_fit(mask, contours),
        "square": area / max(w * h, 1e-6) * min(w, h) / max(w, h, 1e-6),
        "triangle": area / max(tri_area, 1e-6),
    }
    return max(fits, key=fits.get)


MIN_FIGURE_PX = 20  # a blob smaller than this is a smudge, not a figure (a small figure covers 80+)


@dataclass(frozen=True)
class SceneReading:
    background: str
    figures: tuple[Reading, ...]  # largest first


def _as_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)[..., :3]
    if img.shape[:2] != (64, 64):
        img = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA)
    return img


def read_scene(image: np.ndarray) -> SceneReading:
    """Every figure of an RGB uint8 image (any square size; it is read at 64×64), largest first."""
    img = _as_image(image)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(float)
    # A figure may touch the border: take the background as the border's most common tone.
    bg_colour = np.median(border, axis=0)
    background = _nearest(bg_colour, BACKGROUNDS)
    distance = np.linalg.norm(img.astype(float) - bg_colour, axis=-1)
    count, labels, stats, _ = cv2.connectedComponentsWithStats((distance > 60).astype(np.uint8), connectivity=8)
    blobs = sorted(range(1, count), key=lambda k: -stats[k, cv2.CC_STAT_AREA])
    figures = [
        _read_blob(img, (labels == k).astype(np.uint8), stats[k], bg_colour, distance, background)
        for k in blobs
        if stats[k, cv2.CC_STAT_AREA] >= MIN_FIGURE_PX
    ]
    return SceneReading(background, tuple(figures))


def _read_blob(img, blob, stats, bg_colour, distance, background: str) -> Reading:
    # Colour from the blob's core, away from anti-aliased edges that mix in the background; a thin
    # outline has no core, so its strongest half is read instead.
    core = cv2.erode(blob, np.ones((3, 3), np.uint8))
    if core.sum() >= 4:
        pixels = img[core.astype(bool)]
    else:
        strong = distance[blob.astype(bool)]
        pixels = img[blob.astype(bool)][strong >= np.median(strong)]
    mean_rgb = pixels.mean(axis=0)
    colour = _nearest(mean_rgb, COLOURS)
    hue = float(cv2.cvtColor(np.uint8([[mean_rgb]]), cv2.COLOR_RGB2HSV_FULL)[0, 0, 0]) * 360 / 256
    # Area with anti-aliased edges counted by coverage, so the size does not depend on the threshold.
    coverage = np.clip(distance / max(np.linalg.norm(mean_rgb - bg_colour), 1.0), 0, 1)
    area = float(coverage[cv2.dilate(blob, np.ones((3, 3), np.uint8)).astype(bool)].sum())
    radius = math.sqrt(area / math.pi) / 64
    size = "small" if radius < _SMALL_MAX else "large" if radius > _LARGE_MIN else "medium"
    x, y, w, h = (stats[k] for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    centre = ((x + w / 2) / 64, (y + h / 2) / 64)
    position = min(POSITIONS, key=lambda p: math.dist(POSITIONS[p], centre))
    return Reading(colour, _classify_shape(_filled(blob)), size, position, background, radius, centre, hue)


def _filled(blob: np.ndarray) -> np.ndarray:
    """The blob with its holes filled: an outlined figure takes the form of the filled one."""
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    inside = np.zeros_like(blob)
    cv2.drawContours(inside, contours, -1, 1, -1)
    return inside


def fill(image: np.ndarray) -> float:
    """How much of its largest figure's outline is filled with colour: about 1 for a filled figure,
    about 0.6 for a large figure's outline (the `outline` style, 4 px wide), 0 without a figure."""
    img = _as_image(image)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(float)
    distance = np.linalg.norm(img.astype(float) - np.median(border, axis=0), axis=-1)
    count, labels, stats, _ = cv2.connectedComponentsWithStats((distance > 60).astype(np.uint8), connectivity=8)
    if count < 2:
        return 0.0
    blob = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    return float(blob.sum()) / max(float(_filled(blob).sum()), 1.0)


def judge(image: np.ndarray) -> Reading:
    """The attributes of an image's largest figure (of a one-figure picture: of its figure)."""
    scene = read_scene(image)
    if not scene.figures:
        return Reading(_NO_SHAPE, _NO_SHAPE, _NO_SHAPE, _NO_SHAPE, scene.background, 0.0, (0.5, 0.5), 0.0)
    return scene.figures[0]


ATTRIBUTES = ("colour", "shape", "size", "position", "background")
