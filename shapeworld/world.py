"""The world the embedded model draws: one filled shape on a plain background, 64×64 RGB.

Captions follow one grammar:
    a|an [small|large] <colour> <shape> [at the top left|…|in the center] [on a <background> background]
Optional parts are left out at random in training; a left-out attribute is drawn at random.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

IMAGE_SIZE = 64
_SUPERSAMPLE = 4  # draw at 4× and downsample: anti-aliased edges like a real picture

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 30),
    "green": (30, 170, 60),
    "blue": (35, 80, 230),
    "purple": (145, 45, 200),
}
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "medium", "large")  # "medium" is never said: it is what an unsized caption may draw
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
}
# Centre of each named position, as a fraction of the image side (x, y).
POSITIONS: dict[str, tuple[float, float]] = {
    "top left": (0.25, 0.25),
    "top right": (0.75, 0.25),
    "bottom left": (0.25, 0.75),
    "bottom right": (0.75, 0.75),
    "center": (0.5, 0.5),
}
# Equal-area radius as a fraction of the image side.
SIZE_RANGES: dict[str, tuple[float, float]] = {
    "small": (0.10, 0.14),
    "medium": (0.17, 0.21),
    "large": (0.25, 0.30),
}
POSITION_JITTER = 0.05

VOCABULARY = sorted(
    {"a", "an", "at", "the", "in", "on", "background", "top", "bottom", "left", "right", "center"}
    | {"small", "large"}
    | set(COLOURS)
    | set(SHAPES)
    | set(BACKGROUNDS)
)


@dataclass(frozen=True)
class Scene:
    """Everything that decides a picture: what the caption says, plus the drawing's free choices."""

    colour: str
    shape: str
    size: str
    position: str | None  # None: anywhere
    background: str
    radius: float  # equal-area radius, fraction of the side
    centre: tuple[float, float]  # fraction of the side
    angle: float = 0.0  # degrees; squares and triangles sit upright so that shape reads clearly


@dataclass(frozen=True)
class Caption:
    """A caption and which attributes it actually states (the rest were left to chance)."""

    text: str
    says_size: bool
    says_position: bool
    says_background: bool


def sample_scene(rng: np.random.Generator, *, position_anywhere_p: float = 0.3) -> Scene:
    """Draw a random scene; with probability `position_anywhere_p` the shape may sit anywhere."""
    colour = str(rng.choice(list(COLOURS)))
    shape = str(rng.choice(SHAPES))
    size = str(rng.choice(SIZES))
    background = str(rng.choice(list(BACKGROUNDS)))
    radius = float(rng.uniform(*SIZE_RANGES[size]))
    if rng.random() < position_anywhere_p:
        position = None
        margin = min(radius, 0.3)
        centre = (float(rng.uniform(margin, 1 - margin)), float(rng.uniform(margin, 1 - margin)))
    else:
        position = str(rng.choice(list(POSITIONS)))
        cx, cy = POSITIONS[position]
        jx, jy = rng.uniform(-POSITION_JITTER, POSITION_JITTER, size=2)
        centre = (cx + float(jx), cy + float(jy))
    return Scene(colour, shape, size, position, background, radius, centre)


def scene_for(
    rng: np.random.Generator,
    colour: str,
    shape: str,
    size: str | None = None,
    position: str | None = None,
    background: str | None = None,
) -> Scene:
    """A scene with the given attributes fixed and the others drawn at random."""
    s = sample_scene(rng, position_anywhere_p=0.0 if position else 1.0)
    size = size or s.size
    radius = float(rng.uniform(*SIZE_RANGES[size]))
    centre = s.centre
    if position:
        cx, cy = POSITIONS[position]
        jx, jy = rng.uniform(-POSITION_JITTER, POSITION_JITTER, size=2)
        centre = (cx + float(jx), cy + float(jy))
    return Scene(colour, shape, size, position, background or s.background, radius, centre)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption_text(
    colour: str,
    shape: str,
    size: str | None = None,
    position: str | None = None,
    background: str | None = None,
) -> str:
    """Write a caption in the grammar; None leaves that part out."""
    words = [size] if size in ("small", "large") else []
    words += [colour, shape]
    text = f"{article(words[0])} {' '.join(words)}"
    if position == "center":
        text += " in the center"
    elif position:
        text += f" at the {position}"
    if background:
        text += f" on a {background} background"
    return text


def caption_for(scene: Scene, rng: np.random.Generator | None = None, keep_p: float = 0.7) -> Caption:
    """Caption a scene; with an rng each optional part is kept with probability `keep_p`."""

    def keep(available: bool) -> bool:
        return available and (rng is None or rng.random() < keep_p)

    says_size = keep(scene.size in ("small", "large"))
    says_position = keep(scene.position is not None)
    says_background = keep(True)
    text = caption_text(
        scene.colour,
        scene.shape,
        scene.size if says_size else None,
        scene.position if says_position else None,
        scene.background if says_background else None,
    )
    return Caption(text, says_size, says_position, says_background)


def shape_points(shape: str, radius_px: float, centre_px: tuple[float, float]) -> np.ndarray | None:
    """Polygon vertices for a square or an upright equilateral triangle of the given equal area."""
    cx, cy = centre_px
    if shape == "square":
        half = radius_px * math.sqrt(math.pi) / 2
        return np.array([[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half], [cx - half, cy + half]])
    if shape == "triangle":
        side = radius_px * math.sqrt(4 * math.pi / math.sqrt(3))
        height = side * math.sqrt(3) / 2
        # Centre the bounding box, not the centroid, so the drawing sits where its position says.
        top, bottom = cy - height / 2, cy + height / 2
        return np.array([[cx, top], [cx + side / 2, bottom], [cx - side / 2, bottom]])
    return None


def draw(scene: Scene) -> np.ndarray:
    """Render a scene as a 64×64×3 uint8 RGB array."""
    big = IMAGE_SIZE * _SUPERSAMPLE
    canvas = np.empty((big, big, 3), np.uint8)
    canvas[:] = BACKGROUNDS[scene.background]
    colour = COLOURS[scene.colour]
    radius = scene.radius * big
    centre = (scene.centre[0] * big, scene.centre[1] * big)
    points = shape_points(scene.shape, radius, centre)
    if points is None:
        cv2.circle(canvas, (round(centre[0]), round(centre[1])), round(radius), colour, -1, cv2.LINE_AA)
    else:
        cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], colour, cv2.LINE_AA)
    return cv2.resize(canvas, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)


def make_dataset(
    n: int, seed: int, *, position_anywhere_p: float = 0.3, keep_p: float = 0.7
) -> tuple[np.ndarray, list[str]]:
    """`n` training pairs (images N×64×64×3 uint8, captions), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    captions = []
    for i in range(n):
        scene = sample_scene(rng, position_anywhere_p=position_anywhere_p)
        images[i] = draw(scene)
        captions.append(caption_for(scene, rng, keep_p).text)
    return images, captions
