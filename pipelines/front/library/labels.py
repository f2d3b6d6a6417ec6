"""Plain words about recipes: the label of a step in a lineage, the settings two images differ in, and a
search query made safe for SQLite's full-text index.

Recipes are read as plain dicts (their JSON), and a value is looked for wherever a version of Atelier
kept it: at the top level, in `settings` or in `extra`. So recipes written by every version read alike.
"""

from __future__ import annotations

from typing import Any

TASK_WORDS = {"txt2img": "text to image", "variations": "variation"}  # other tasks read well as they are
NOT_SETTINGS = ("image_id", "notices")  # facts about an image that every pair differs in or that say nothing
MAX_WORDS = 32  # a search reads at most this many words…
MAX_WORD = 64  # …of at most this many characters
LABEL_PROMPT = 40  # characters of a prompt a label quotes


def as_dict(recipe: Any) -> dict[str, Any]:
    """A recipe as its JSON dict, from a `Recipe` or from a dict already."""
    return recipe if isinstance(recipe, dict) else recipe.to_dict()


def setting(recipe: dict[str, Any], name: str) -> Any:
    """A recipe's value for `name` wherever its version kept it (top level, `settings`, `extra`), or None."""
    for place in (recipe, recipe.get("settings"), recipe.get("extra")):
        if isinstance(place, dict) and place.get(name) is not None:
            return place[name]
    return None


def step_label(recipe: Any) -> str:
    """The operation that made an image and its key setting, in plain words: "text to image · seed 42",
    "variation · similarity 0.8", "inpaint · a red circle", "morph · 0.25 toward a blue square",
    "upscale ×4 · seed 3", "text to image, hires ×4 · seed 42", "variation, upscaled ×4 · similarity 0.7"."""
    data = as_dict(recipe)
    task = str(data.get("task") or "image")
    name = TASK_WORDS.get(task, task.replace("_", " "))
    if task == "upscale" and setting(data, "scale"):
        name = f"upscale ×{setting(data, 'scale')}"
    elif setting(data, "hires"):
        name = f"{name}, hires ×{setting(data, 'hires_scale')}"
    elif setting(data, "upscaled"):  # sent larger than the model works: brought back through its stage
        name = f"{name}, upscaled ×{setting(data, 'upscaled')}"
    prompt = _quoted(setting(data, "prompt"))
    if task == "variations":
        similarity, strength = setting(data, "similarity"), setting(data, "strength")
        detail = f"similarity {_number(similarity)}" if similarity is not None else _named("strength", strength)
    elif task in ("inpaint", "outpaint"):
        detail = prompt or _named("strength", setting(data, "strength"))
    elif task == "morph":
        position, toward = setting(data, "position"), _quoted(setting(data, "prompt_b"))
        if position is None:
            detail = prompt
        else:
            detail = f"{_number(position)} toward {toward}" if toward else f"frame at {_number(position)}"
    else:
        detail = _named("seed", setting(data, "seed"))
    return f"{name} · {detail}" if detail else name


def recipe_differences(a: Any, b: Any) -> list[dict[str, Any]]:
    """The settings in which two recipes differ, in the order the first lists them: [{field, a, b}].

    Task settings (in `settings` or `extra`, by version) are compared by their own names, so recipes of
    two versions compare by meaning; library versions as `versions.<name>`.
    """
    flat_a, flat_b = _flat(as_dict(a)), _flat(as_dict(b))
    names = list(flat_a) + [name for name in flat_b if name not in flat_a]
    return [
        {"field": name, "a": flat_a.get(name), "b": flat_b.get(name)}
        for name in names
        if flat_a.get(name) != flat_b.get(name)
    ]


def match_expression(query: str, column: str) -> str | None:
    """An FTS5 query for these words in `column`, or None when there are none.

    Every word becomes a quoted FTS5 string (its quotes doubled) with a prefix star, so nothing a person
    types is read as syntax: `"`, `*`, `NEAR(`, `-`, `AND` and `'; DROP TABLE` are all just words. A
    string that holds no indexable word (an emoji, a lone `*`) matches nothing by itself.
    """
    # Lone surrogates cannot be bound as text, and NUL ends a C string: neither belongs to a word.
    text = str(query).replace("\x00", " ").encode("utf-8", "ignore").decode("utf-8")
    words = text.split()[:MAX_WORDS]
    if not words:
        return None
    phrases = " ".join('"' + word[:MAX_WORD].replace('"', '""') + '"*' for word in words)
    return f"{column} : ({phrases})"


def _flat(recipe: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in recipe.items():
        if key in NOT_SETTINGS or value is None:
            continue
        if key in ("settings", "extra") and isinstance(value, dict):
            out.update({k: v for k, v in value.items() if v is not None})
        elif isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _number(value: Any) -> str:
    if isinstance(value, int):  # a seed keeps every digit
        return str(value)
    try:
        return f"{round(float(value), 2):g}"
    except (TypeError, ValueError):
        return str(value)


def _named(name: str, value: Any) -> str:
    return "" if value is None else f"{name} {_number(value)}"


def _quoted(prompt: Any) -> str:
    """A prompt short enough for a label, cut at a word."""
    text = " ".join(str(prompt or "").split())
    if len(text) <= LABEL_PROMPT:
        return text
    return text[:LABEL_PROMPT].rsplit(" ", 1)[0] + "…"
