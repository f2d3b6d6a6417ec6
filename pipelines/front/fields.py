"""Settings declared once: each request field's default, range, step, the words the page shows, whether
its recipe records it and what other tools call it.

A request type declares a field with `setting(...)` (the way InvokeAI's `InputField` and ComfyUI's
`INPUT_TYPES` do); validation, recipes, the page's controls and every API read that one declaration, so
no surface keeps a copy to drift. A bound or a list of choices may name a `Limits` attribute instead of a
number ("max_images", "schedulers"): what the model or the server allows is read when a request is checked.
"""

from __future__ import annotations

import dataclasses
import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError

MAX_PROMPT_CHARS = 2000  # far beyond any text encoder's window; longer is a paste error, not a prompt
MAX_SEED = 2**32 - 1
_KEY = "atelier.setting"

Bound = float | str | None  # a number, or the name of a Limits attribute


@dataclass(frozen=True)
class Setting:
    """One field's facts. `name` and `default` are filled in from the dataclass field it declares."""

    kind: str  # int, float, size (an int, a multiple of `step`), seed, bool, choice, text, prompt
    label: str  # the page's words for it; a refusal on the page names it so
    help: str = ""  # one line under the control
    minimum: Bound = None
    maximum: Bound = None
    step: float | None = None  # the control's step; a size must also be a multiple of it
    choices: tuple[str, ...] | str = ()  # the accepted values, or a Limits attribute holding them
    recorded: bool = True  # each result's recipe records it (under `settings`, unless the Recipe has a field)
    a1111: str | None = None  # AUTOMATIC1111's name for it (`cfg_scale` for `guidance_scale`)
    preset: str | None = None  # the ModelPreset attribute that gives its default on the page (steps, width…)
    name: str = ""
    default: Any = None

    def bounds(self, limits: Any) -> tuple[Any, Any]:
        """(minimum, maximum) for the model and server `limits` describe."""
        return resolve(self.minimum, limits), resolve(self.maximum, limits)

    def options(self, limits: Any) -> tuple[str, ...]:
        return tuple(resolve(self.choices, limits))

    def checked(self, value: Any, limits: Any) -> Any:
        """`value` normalised, or a ValidationError that names the field."""
        low, high = self.bounds(limits)
        if self.kind == "int":
            return as_int(self.name, value, low, high)
        if self.kind == "size":
            return as_multiple(self.name, value, low, high, int(self.step or 1))
        if self.kind == "seed":
            return as_int(self.name, value, -1, MAX_SEED)
        if self.kind == "float":
            return as_float(self.name, value, low, high)
        if self.kind == "bool":
            return as_bool(self.name, value)
        if self.kind == "choice":
            return as_choice(self.name, value, self.options(limits))
        return clean_text(self.name, value)  # text; a prompt is checked with the styles that wrap it


def resolve(value: Any, limits: Any) -> Any:
    return getattr(limits, value) if isinstance(value, str) else value


def setting(default: Any, kind: str, label: str, **facts: Any) -> Any:
    """A request field with its facts (see `Setting`), for a frozen dataclass; `MISSING`: it must be given."""
    metadata = {_KEY: Setting(kind, label, **facts)}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def settings_of(request_type: type) -> dict[str, Setting]:
    """Every declared setting of a request type (or request), in field order, with name and default."""
    out = {}
    for f in dataclasses.fields(request_type):
        if _KEY in f.metadata:
            out[f.name] = dataclasses.replace(f.metadata[_KEY], name=f.name, default=f.default)
    return out


# -- the checks, one per kind ---------------------------------------------------------------------------


def clean_text(name: str, value: Any, *, required: bool = False, limit: int = MAX_PROMPT_CHARS) -> str:
    """Text as typed, minus what cannot be shown or encoded: NUL and other controls, lone surrogates."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError(name, f"expected text, got {type(value).__name__}")
    if len(value) > limit:
        raise ValidationError(name, f"{len(value)} characters; at most {limit} are accepted")
    value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    value = "".join(c for c in value if c in "\n\t" or unicodedata.category(c) != "Cc").strip()
    if required and not value:
        raise ValidationError(name, "must not be empty")
    return value


def as_int(name: str, value: Any, low: int, high: int) -> int:
    """An integer in [low, high]; an integral float (20.0) is accepted, 20.5 is not."""
    if isinstance(value, bool) or value is None:
        raise ValidationError(name, f"expected a whole number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValidationError(name, f"expected a whole number, got {value!r}") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(name, f"expected a whole number, got {value}")
        if not value.is_integer():
            raise ValidationError(name, f"expected a whole number, got {value}")
        value = int(value)
    if not isinstance(value, int):
        raise ValidationError(name, f"expected a whole number, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValidationError(name, f"{value} is out of range {low}–{high}")
    return value


def as_multiple(name: str, value: Any, low: int, high: int, of: int) -> int:
    size = as_int(name, value, low, high)
    if size % of:
        raise ValidationError(name, f"{size} is not a multiple of {of}")
    return size


def as_float(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or value is None:
        raise ValidationError(name, f"expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(name, f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValidationError(name, f"expected a finite number, got {number}")
    if not low <= number <= high:
        raise ValidationError(name, f"{number:g} is out of range {low:g}–{high:g}")
    return number


def as_bool(name: str, value: Any) -> bool:
    """True or False; from a script also 1/0 and the words true/false (never any other text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValidationError(name, f"expected true or false, got {str(value)[:80]!r}")


def as_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        shown = ", ".join(choices) if len(choices) <= 12 else ", ".join(choices[:12]) + ", …"
        raise ValidationError(name, f"{str(value)[:80]!r} is not one of: {shown}")
    return value
