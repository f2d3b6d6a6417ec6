"""Styles: named bundles of a prompt template, a negative prompt and settings, picked in any tab.

A style's `prompt` holds `{prompt}` where the person's words go (without it, the style's text follows
them after a comma, as in AUTOMATIC1111); its negative prompt is joined the same way. Its `settings`
(model, scheduler, steps, guidance, size, LoRAs) are what picking it puts into the controls. Several
styles apply in the order picked.

The person's own styles live in one readable JSON file in their data folder; a model folder may ship
its own (`styles.json` beside `loras/`); AUTOMATIC1111's `styles.csv` can be imported. Torch-free.
"""

from __future__ import annotations

import csv
import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ValidationError

MAX_STYLES = 500  # in one file: a style book, not a database
MAX_NAME = 60
# The settings a style may carry: request fields that every tab shares or that size the picture.
SETTINGS = ("model", "scheduler", "steps", "guidance_scale", "width", "height", "loras")

StyleText = tuple[str, str, str]  # (name, prompt template, negative prompt template)


@dataclass(frozen=True)
class Style:
    name: str
    prompt: str = "{prompt}"  # the person's words go where {prompt} is
    negative_prompt: str = ""
    settings: dict[str, Any] = field(default_factory=dict)  # what picking it puts into the controls

    @property
    def text(self) -> StyleText:
        return (self.name, self.prompt, self.negative_prompt)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Style:
        settings = {k: v for k, v in dict(data.get("settings") or {}).items() if k in SETTINGS}
        return cls(
            name=clean_name(data.get("name")),
            prompt=str(data.get("prompt") or "{prompt}"),
            negative_prompt=str(data.get("negative_prompt") or ""),
            settings=settings,
        )


def clean_name(name: Any) -> str:
    text = " ".join(str(name or "").split())[:MAX_NAME]
    if not text:
        raise ValidationError("style", "a style needs a name")
    if "," in text:
        raise ValidationError("style", "a style's name cannot hold a comma")
    return text


def _join(words: str, template: str) -> str:
    if "{prompt}" in template:
        return template.replace("{prompt}", words)
    return ", ".join(part for part in (words, template) if part)


def expand(prompt: str, negative: str, names: tuple[str, ...], offered: tuple[StyleText, ...]) -> tuple[str, str]:
    """The prompt and negative prompt with each named style applied in turn."""
    by_name = {name: (p, n) for name, p, n in offered}
    for name in names:
        template, negative_template = by_name[name]
        prompt, negative = _join(prompt, template), _join(negative, negative_template)
    return prompt.strip(), negative.strip()


BACKGROUND = re.compile(r"\b([a-z]+) background\b", re.IGNORECASE)  # "on a white background" sets "white"


def _backgrounds(text: str) -> list[str]:
    return list(dict.fromkeys(word.lower() for word in BACKGROUND.findall(text)))


def disagreements(prompt: str, names: tuple[str, ...], offered: tuple[StyleText, ...]) -> tuple[str, ...]:
    """A sentence for each picked style whose words set the background otherwise than the person's prompt
    (or whose negative prompt avoids the one asked for). Both then reach the model, which draws one of
    them — not always the same one (on the embedded model the style's colour won in three of four pairs
    tried) — so the person should know, and choose."""
    asked = _backgrounds(prompt)
    if not asked:
        return ()
    by_name = {name: (p, n) for name, p, n in offered}
    sentences = []
    for name in names:
        template, negative = by_name[name]
        other = [word for word in _backgrounds(template.replace("{prompt}", "")) if word not in asked]
        avoided = [word for word in _backgrounds(negative) if word in asked]
        if other:
            sentences.append(f"The prompt's \"{asked[0]} background\" and the style \"{name}\"'s \"{other[0]} background\" "
                        "disagree: the picture gets one of them, not always the same one. Drop one to choose.")
        elif avoided:
            sentences.append(f"The style \"{name}\" avoids a {avoided[0]} background, which the prompt asks for: the "
                        "picture may not have it. Drop the style to keep it.")
    return tuple(sentences)


def as_style_names(name: str, value: Any, offered: tuple[StyleText, ...]) -> tuple[str, ...]:
    """Style names from a picker (a list) or a script (a list or "night, poster"), each one offered."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)):
        raise ValidationError(name, f"expected style names, got {type(value).__name__}")
    known = [s[0] for s in offered]
    names = tuple(dict.fromkeys(str(v).strip() for v in value if str(v).strip()))
    for style in names:
        if style not in known:
            raise ValidationError(name, f"no style named {style[:80]!r}; offered: {', '.join(known) or 'none'}")
    return names


def read_file(path: Path) -> list[Style]:
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Style.from_dict(item) for item in data.get("styles", [])[:MAX_STYLES]]


class StyleBook:
    """The person's styles in `path` (read and written whole, under a lock), plus those a model ships."""

    def __init__(self, path: str | os.PathLike | None, *, writable: bool = True):
        self.path = Path(path).expanduser() if path else None
        self.writable = writable and self.path is not None  # a public demo shares one server: read-only
        self._lock = threading.Lock()

    def own(self) -> list[Style]:
        try:
            return read_file(self.path) if self.path else []
        except (OSError, ValueError) as e:
            raise ValidationError("style", f"the style file {self.path} cannot be read: {e}") from None

    def files_for(self, preset) -> tuple[Path, ...]:
        """The files `for_model(preset)` reads: what to watch for a change."""
        return (Path(preset.source) / "styles.json", *((self.path,) if self.path else ()))

    def for_model(self, preset) -> dict[str, Style]:
        """The styles offered with `preset`: those its folder ships, then the person's (theirs win)."""
        shipped = Path(preset.source) / "styles.json"
        styles = {s.name: s for s in read_file(shipped)} if shipped.is_file() else {}
        styles.update((s.name, s) for s in self.own())
        return styles

    def _write(self, styles: list[Style]) -> None:
        if not self.writable:
            raise ValidationError("style", "this server does not keep styles (a public demo)")
        if len(styles) > MAX_STYLES:
            raise ValidationError("style", f"at most {MAX_STYLES} styles")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(json.dumps({"styles": [asdict(s) for s in styles]}, indent=2, ensure_ascii=False) + "\n")
        scratch.replace(self.path)  # whole or not at all: a crash never leaves half a file

    def save(self, style: Style) -> None:
        """Add `style`, or replace the person's style of that name."""
        with self._lock:
            styles = [s for s in self.own() if s.name != style.name]
            self._write([*styles, style])

    def rename(self, old: str, new: str) -> None:
        new = clean_name(new)
        with self._lock:
            styles = self.own()
            if old not in [s.name for s in styles]:
                raise ValidationError("style", f"{old!r} is not one of your styles")
            if new != old and new in [s.name for s in styles]:
                raise ValidationError("style", f"you already have a style named {new!r}")
            self._write([Style(new, s.prompt, s.negative_prompt, s.settings) if s.name == old else s for s in styles])

    def delete(self, name: str) -> None:
        with self._lock:
            styles = self.own()
            if name not in [s.name for s in styles]:
                raise ValidationError("style", f"{name!r} is not one of your styles")
            self._write([s for s in styles if s.name != name])

    def import_a1111(self, csv_path: str | os.PathLike) -> int:
        """AUTOMATIC1111's styles.csv (columns name, prompt, negative_prompt) added to the person's styles,
        replacing those of the same name; returns how many."""
        try:
            with open(csv_path, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise ValidationError("styles.csv", f"cannot be read: {e}") from None
        if rows and "name" not in rows[0]:
            raise ValidationError("styles.csv", "has no 'name' column (AUTOMATIC1111's has name, prompt, negative_prompt)")
        imported = []
        for row in rows:
            try:
                imported.append(Style.from_dict(row))
            except ValidationError:
                continue  # A1111 keeps a nameless "None" row at times: nothing to import
        with self._lock:
            names = {s.name for s in imported}
            self._write([*(s for s in self.own() if s.name not in names), *imported])
        return len(imported)
