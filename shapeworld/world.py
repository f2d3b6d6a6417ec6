"""The world the embedded model draws: one to three filled shapes on a plain background, 64×64 RGB.

Captions follow one grammar:
    <figure> [and <figure> [and <figure>]] [on a <background> background]
    <figure> = a|an [small|large] <colour> <shape> [at the top left|…|in the center]
A one-figure caption means what it meant before scenes existed. Optional parts are left out at random in
training; a left-out attribute is drawn at random. Figures in one scene never overlap, keep a gap that
the judge can see, and sit in different named places.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

IMAGE_SIZE = 64
_SUPERSAMPLE = 4  # draw at 4× and downsample: anti-aliased edges like a real picture
_GAP_PX = 2  # figures of one scene stay this many pixels apart, so each reads as its own blob
OUTLINE_PX = 4.0  # the edge of an outlined figure (the `outline` LoRA's style), in 64×64 pixels: one latent cell
STYLES = ("filled", "outline")

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
MAX_FIGURES = 3
FIGURE_COUNT_P = (0.4, 0.35, 0.25)  # share of scenes with one, two and three figures in training

VOCABULARY = sorted(
    {"a", "an", "and", "at", "the", "in", "on", "background", "top", "bottom", "left", "right", "center"}
    | {"small", "large"}
    | set(COLOURS)
    | set(SHAPES)
    | set(BACKGROUNDS)
)


@dataclass(frozen=True)
class Figure:
    """One shape of a scene: what a caption can say of it, plus the drawing's free choices."""

    colour: str
    shape: str
    size: str
    position: str | None  # None: anywhere (only in one-figure scenes)
    radius: float  # equal-area radius, fraction of the side
    centre: tuple[float, float]  # fraction of the side


@dataclass(frozen=True)
class Scene:
    figures: tuple[Figure, ...]
    background: str


@dataclass(frozen=True)
class Caption:
    """A caption and which attributes it states, figure by figure (the rest were left to chance)."""

    text: str
    says_size: tuple[bool, ...]
    says_position: tuple[bool, ...]
    says_background: bool


def _placed(rng: np.random.Generator, position: str) -> tuple[float, float]:
    cx, cy = POSITIONS[position]
    jx, jy = rng.uniform(-POSITION_JITTER, POSITION_JITTER, size=2)
    return cx + float(jx), cy + float(jy)


def figure_for(
    rng: np.random.Generator,
    colour: str | None = None,
    shape: str | None = None,
    size: str | None = None,
    position: str | None = None,
    *,
    anywhere: bool = False,
) -> Figure:
    """A figure with the given attributes and the others drawn at random; `anywhere` ignores `position`."""
    colour = colour or str(rng.choice(list(COLOURS)))
    shape = shape or str(rng.choice(SHAPES))
    size = size or str(rng.choice(SIZES))
    radius = float(rng.uniform(*SIZE_RANGES[size]))
    if anywhere:
        margin = min(radius, 0.3)
        centre = (float(rng.uniform(margin, 1 - margin)), float(rng.uniform(margin, 1 - margin)))
        return Figure(colour, shape, size, None, radius, centre)
    position = position or str(rng.choice(list(POSITIONS)))
    return Figure(colour, shape, size, position, radius, _placed(rng, position))


def sample_scene(
    rng: np.random.Generator,
    *,
    figures: int | None = None,
    position_anywhere_p: float = 0.3,
    count_p: tuple[float, ...] = FIGURE_COUNT_P,
) -> Scene:
    """A random scene; a one-figure scene may place its figure anywhere (probability
    `position_anywhere_p`), figures of a larger scene sit in different named places."""
    count = figures or int(rng.choice(len(count_p), p=count_p)) + 1
    background = str(rng.choice(list(BACKGROUNDS)))
    if count == 1:
        return Scene((figure_for(rng, anywhere=rng.random() < position_anywhere_p),), background)
    return Scene(fit_figures(rng, [dict() for _ in range(count)]), background)


def fit_figures(rng: np.random.Generator, specs: list[dict]) -> tuple[Figure, ...]:
    """Figures for the given partial specs (colour, shape, size, position), in distinct named places and
    clear of each other: unsaid sizes and places are redrawn until they fit, then sizes shrink."""
    for attempt in range(60):
        taken = [s["position"] for s in specs if s.get("position")]
        free = [p for p in POSITIONS if p not in taken]
        order = rng.permutation(len(free)).tolist()
        figures = []
        for spec in specs:
            position = spec.get("position") or free[order.pop()]
            # Crowded: after many tries, figures of unsaid size become small, which fit anywhere.
            size = spec.get("size") or ("small" if attempt >= 30 else None)
            figures.append(figure_for(rng, spec.get("colour"), spec.get("shape"), size, position))
        if apart(figures):
            return tuple(figures)
    raise ValueError(f"these figures cannot share one picture without touching: {specs}")


def scene_for(
    rng: np.random.Generator,
    colour: str,
    shape: str,
    size: str | None = None,
    position: str | None = None,
    background: str | None = None,
) -> Scene:
    """A one-figure scene with the given attributes fixed and the others drawn at random."""
    figure = figure_for(rng, colour, shape, size, position, anywhere=position is None)
    return Scene((figure,), background or str(rng.choice(list(BACKGROUNDS))))


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def figure_text(colour: str, shape: str, size: str | None = None, position: str | None = None) -> str:
    words = [size] if size in ("small", "large") else []
    words += [colour, shape]
    text = f"{article(words[0])} {' '.join(words)}"
    if position == "center":
        text += " in the center"
    elif position:
        text += f" at the {position}"
    return text


def caption_text(
    colour: str,
    shape: str,
    size: str | None = None,
    position: str | None = None,
    background: str | None = None,
) -> str:
    """Write a one-figure caption in the grammar; None leaves that part out."""
    return scene_text([figure_text(colour, shape, size, position)], background)


def scene_text(figures: list[str], background: str | None = None) -> str:
    text = " and ".join(figures)
    return f"{text} on a {background} background" if background else text


def caption_for(
    scene: Scene, rng: np.random.Generator | None = None, keep_p: float = 0.7, position_p: float | None = None
) -> Caption:
    """Caption a scene, its figures in a random order when an rng is given. With an rng each optional
    part is kept with probability `keep_p` (a position with `position_p`, default `keep_p`); without
    one, everything is said."""
    position_p = keep_p if position_p is None else position_p

    def keep(available: bool, p: float) -> bool:
        return available and (rng is None or rng.random() < p)

    order = list(range(len(scene.figures))) if rng is None else rng.permutation(len(scene.figures)).tolist()
    says_size, says_position, parts = [False] * len(order), [False] * len(order), []
    for i in order:
        f = scene.figures[i]
        says_size[i] = keep(f.size in ("small", "large"), keep_p)
        says_position[i] = keep(f.position is not None, position_p)
        parts.append(figure_text(f.colour, f.shape, f.size if says_size[i] else None, f.position if says_position[i] else None))
    says_background = keep(True, keep_p)
    text = scene_text(parts, scene.background if says_background else None)
    return Caption(text, tuple(says_size), tuple(says_position), says_background)


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


def _paint(canvas: np.ndarray, figure: Figure, colour, style: str = "filled") -> None:
    big = canvas.shape[0]
    radius = figure.radius * big
    centre = (figure.centre[0] * big, figure.centre[1] * big)
    points = shape_points(figure.shape, radius, centre)
    if style == "outline":  # the coloured edge alone, drawn inside the filled figure's own boundary
        edge = round(OUTLINE_PX * big / IMAGE_SIZE)
        if points is None:
            cv2.circle(canvas, (round(centre[0]), round(centre[1])), round(radius - edge / 2), colour, edge, cv2.LINE_AA)
        else:
            inner = centre + (points - centre) * (1 - edge / 2 / max(radius, 1.0))
            cv2.polylines(canvas, [np.round(inner).astype(np.int32)], True, colour, edge, cv2.LINE_AA)
    elif points is None:
        cv2.circle(canvas, (round(centre[0]), round(centre[1])), round(radius), colour, -1, cv2.LINE_AA)
    else:
        cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], colour, cv2.LINE_AA)


def footprint(figure: Figure) -> np.ndarray:
    """The pixels a figure touches at 64×64 (anti-aliased edges included), as a boolean mask."""
    big = IMAGE_SIZE * _SUPERSAMPLE
    canvas = np.zeros((big, big), np.uint8)
    _paint(canvas, figure, 255)
    return cv2.resize(canvas, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA) > 0


def apart(figures: list[Figure]) -> bool:
    """No two figures touch, with a gap of `_GAP_PX` pixels between them."""
    grow = np.ones((2 * _GAP_PX + 1, 2 * _GAP_PX + 1), np.uint8)
    masks = [cv2.dilate(footprint(f).astype(np.uint8), grow) > 0 for f in figures]
    return all(not (masks[i] & footprint(figures[j])).any() for i in range(len(figures)) for j in range(i + 1, len(figures)))


def draw(scene: Scene, style: str = "filled", size: int = IMAGE_SIZE) -> np.ndarray:
    """Render a scene as a size×size×3 uint8 RGB array (64² unless asked), its figures filled or as outlines.

    Other sizes are the same scene drawn finer (the upscaler's truth), not the 64² picture resized."""
    big = size * _SUPERSAMPLE
    canvas = np.empty((big, big, 3), np.uint8)
    canvas[:] = BACKGROUNDS[scene.background]
    for figure in scene.figures:
        _paint(canvas, figure, COLOURS[figure.colour], style)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def make_dataset(
    n: int,
    seed: int,
    *,
    position_anywhere_p: float = 0.3,
    keep_p: float = 0.7,
    position_p: float | None = None,
    count_p: tuple[float, ...] = FIGURE_COUNT_P,
    style: str = "filled",
) -> tuple[np.ndarray, list[str]]:
    """`n` training pairs (images N×64×64×3 uint8, captions), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    captions = []
    for i in range(n):
        scene = sample_scene(rng, position_anywhere_p=position_anywhere_p, count_p=count_p)
        images[i] = draw(scene, style)
        captions.append(caption_for(scene, rng, keep_p, position_p).text)
    return images, captions


# -- inpainting: a region of a scene, and a caption that says what goes in it -------------------------


def region_mask(rng: np.random.Generator, box: tuple[int, int, int, int], keep_out: np.ndarray) -> np.ndarray:
    """A mask covering `box` (x0, y0, x1, y1 in pixels) with a random margin, as a rectangle or an
    ellipse (what a brush leaves), kept off the `keep_out` pixels; uint8 0/255 at 64×64."""
    x0, y0, x1, y1 = box
    m = rng.integers(1, 7, size=4)
    x0, y0 = max(0, x0 - m[0]), max(0, y0 - m[1])
    x1, y1 = min(IMAGE_SIZE - 1, x1 + m[2]), min(IMAGE_SIZE - 1, y1 + m[3])
    mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    if rng.random() < 0.5:
        mask[y0 : y1 + 1, x0 : x1 + 1] = 255
    else:
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
        axes = ((x1 - x0) / 2 * 1.3 + 1, (y1 - y0) / 2 * 1.3 + 1)  # an ellipse around the box holds it
        cv2.ellipse(mask, (round(centre[0]), round(centre[1])), (round(axes[0]), round(axes[1])), 0, 0, 360, 255, -1)
    mask[keep_out] = 0
    return mask


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def inpaint_example(
    rng: np.random.Generator, *, empty_p: float = 0.1, keep_p: float = 0.5
) -> tuple[np.ndarray, np.ndarray, str]:
    """(image, mask, caption): the whole scene, a region holding one of its figures (or, with
    probability `empty_p`, an empty stretch of background), and a caption of what is in the region —
    "what goes there", as the Inpaint tab asks. The other figures stay outside the mask."""
    scene = sample_scene(rng, position_anywhere_p=0.3)
    image = draw(scene)
    footprints = [footprint(f) for f in scene.figures]
    grow = np.ones((3, 3), np.uint8)
    if rng.random() < empty_p:  # an empty region: a figure's footprint, then removed from the scene
        target = figure_for(rng, size=str(rng.choice(["small", "medium"])), anywhere=True)
        others = np.any(footprints, axis=0)
        if (footprint(target) & (cv2.dilate(others.astype(np.uint8), grow, iterations=2) > 0)).any():
            return inpaint_example(rng, empty_p=empty_p, keep_p=keep_p)
        keep_out = cv2.dilate(others.astype(np.uint8), grow) > 0
        mask = region_mask(rng, bounding_box(footprint(target)), keep_out)
        caption = f"on a {scene.background} background" if rng.random() < keep_p else ""
        return image, mask, caption
    pick = int(rng.integers(len(scene.figures)))
    target = scene.figures[pick]
    others = [fp for i, fp in enumerate(footprints) if i != pick]
    keep_out = cv2.dilate(np.any(others, axis=0).astype(np.uint8), grow) > 0 if others else np.zeros_like(footprints[0])
    mask = region_mask(rng, bounding_box(footprints[pick]), keep_out)
    if not (mask[footprints[pick]] > 0).all():  # a neighbour clipped the region: the figure must fit whole
        return inpaint_example(rng, empty_p=empty_p, keep_p=keep_p)
    size = target.size if rng.random() < keep_p else None
    background = scene.background if rng.random() < keep_p else None
    return image, mask, caption_text(target.colour, target.shape, size, None, background)


def make_inpaint_dataset(n: int, seed: int, *, empty_p: float = 0.1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`n` inpainting examples (images N×64×64×3, masks N×64×64 uint8 0/255, captions), by seed."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    masks = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    captions = []
    for i in range(n):
        images[i], masks[i], caption = inpaint_example(rng, empty_p=empty_p)
        captions.append(caption)
    return images, masks, captions

