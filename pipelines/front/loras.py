"""LoRA files: where they are found, which model each fits, and how a request names them.

A LoRA is one safetensors file (never a pickle), in the diffusers/PEFT layout or the kohya layout most
shared LoRAs use (diffusers converts that one itself when it loads it). The person running the server
registers files and folders (`--lora-dirs name=path,…`); a model folder's own `loras/` serves that model.
A request names LoRAs only by name — the browser never sees a path — with a weight each, from a picker
or as `<lora:name:weight>` in a prompt (taken out of the text the encoder reads).

Which model a file fits is read from its header without loading it: the width of the text features its
cross-attention projections take (768 for SD 1.5, 1024 for SD 2.x, 2048 for SDXL, 256 for the embedded
model). Torch-free: the front reads it to validate a request before anything is queued.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ValidationError

log = logging.getLogger(__name__)

MAX_WEIGHT = 2.0  # |weight| above this wrecks any model: refused, as a typo
MAX_LORAS = 8  # at once, in one request
FAMILY_WIDTHS = {"sd15": 768, "sd21": 1024, "sdxl": 2048, "shapes": 256}  # text features per family
TAG = re.compile(r"<lora:([^:>]*)(?::([^:>]*))?(?::[^>]*)?>", re.IGNORECASE)

Loras = tuple[tuple[str, float], ...]  # (name, weight) pairs, in the order asked


@dataclass(frozen=True)
class LoraFile:
    name: str
    path: str
    width: int | None  # the text-feature width its cross-attention takes; None: it does not say


def cross_attention_width(path: Path) -> int | None:
    """The input width of the first cross-attention key projection's down matrix, from the header.

    PEFT layout: `….attn2.to_k.lora_A.weight` (rank × width); kohya: `…attn2_to_k.lora_down.weight`;
    diffusers' old layout: `…attn2.processor.to_k_lora.down.weight`.
    """
    with path.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if not 0 < size < 100_000_000:
            raise ValueError("not a safetensors file")
        header = json.loads(f.read(size))
    for key, entry in header.items():
        flat = key.replace("_", ".")
        if "attn2.to.k" in flat and any(d in flat for d in ("lora.A.weight", "lora.down.weight", "to.k.lora.down.weight")):
            shape = entry.get("shape") or []
            if len(shape) == 2:
                return int(shape[1])
    return None


def model_width(preset) -> int | None:
    """The text-feature width of a preset's U-Net: its config where the model is on disk, else its family's."""
    config = Path(preset.source) / "unet" / "config.json"
    if config.is_file():
        width = json.loads(config.read_text()).get("cross_attention_dim")
        if isinstance(width, int):
            return width
    return FAMILY_WIDTHS.get(preset.family)


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.safetensors") if p.is_file())


def find_loras(preset, folders: tuple[tuple[str, str], ...]) -> dict[str, LoraFile]:
    """Every LoRA this server offers beside `preset`: the model folder's own `loras/` first, then each
    registered file (by its registered name) or folder (each file by its name without `.safetensors`).
    Unreadable files are logged and left out."""
    out = {}
    for name, path in lora_paths(preset, folders).items():
        try:
            out[name] = LoraFile(name, str(path.resolve()), cross_attention_width(path))
        except (OSError, ValueError) as e:
            log.warning("LoRA %s skipped: %s", path, e)
    return out


def lora_paths(preset, folders: tuple[tuple[str, str], ...]) -> dict[str, Path]:
    """The LoRA files `find_loras` reads, by name, without reading them."""
    found: dict[str, Path] = {}
    own = Path(preset.source) / "loras"
    if own.is_dir():
        found.update((p.stem, p) for p in _files_in(own))
    for name, where in folders:
        path = Path(where).expanduser()
        if path.is_dir():
            for p in _files_in(path):
                found.setdefault(p.stem, p)
        elif path.suffix == ".safetensors" and path.is_file():
            found.setdefault(name, path)
    return found


def check_folders(folders: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """`--lora-dirs` checked when the server starts: each a .safetensors file or a folder."""
    for name, where in folders.items():
        path = Path(where).expanduser()
        if not (path.is_dir() or (path.is_file() and path.suffix == ".safetensors")):
            raise ValueError(f"LoRA {name}={where} is neither a folder nor a .safetensors file")
    return tuple(folders.items())


def refusal(lora: LoraFile, width: int | None, label: str) -> str:
    """Why `lora` cannot serve a model whose text features are `width` wide, or "" when it can."""
    if lora.width is None or width is None or lora.width == width:
        return ""
    made_for = {v: k for k, v in FAMILY_WIDTHS.items()}.get(lora.width, f"{lora.width}-wide text features")
    return f"{lora.name!r} was made for another kind of model ({made_for}), not {label}"


def split_tags(text: str) -> tuple[str, Loras]:
    """`<lora:name:weight>` tags taken out of a prompt: the text without them, and the (name, weight)
    pairs (weight 1 where none is given)."""
    found = []
    for match in TAG.finditer(text):
        name, weight = match.group(1).strip(), (match.group(2) or "1").strip()
        try:
            found.append((name, float(weight)))
        except ValueError:
            raise ValidationError("prompt", f"{match.group(0)}: the weight must be a number") from None
    cleaned = re.sub(r"\s{2,}", " ", TAG.sub("", text)).strip().strip(",").strip()
    return cleaned, tuple(found)


def as_loras(name: str, value: Any) -> Loras:
    """(name, weight) pairs from what a picker or a script hands over: pairs, rows of a table (empty
    rows ignored), a {name: weight} mapping, or text such as "outline:0.8, other"."""
    if value is None or value == "":
        return ()
    if isinstance(value, dict) and "data" in value:  # a table's value as Gradio sends it unprocessed
        value = value["data"]
    if isinstance(value, dict):
        value = list(value.items())
    if isinstance(value, str):
        value = [part.rsplit(":", 1) if ":" in part else (part, 1) for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise ValidationError(name, f"expected LoRA names with weights, got {type(value).__name__}")
    out = []
    for row in value:
        if isinstance(row, dict):
            row = (row.get("name"), row.get("weight", 1))
        if not isinstance(row, (list, tuple)) or not row or row[0] in (None, ""):
            continue
        lora = str(row[0]).strip()
        raw = row[1] if len(row) > 1 and row[1] not in (None, "") else 1
        try:
            weight = float(raw)
        except (TypeError, ValueError):
            raise ValidationError(name, f"{lora}: the weight {raw!r} is not a number") from None
        if lora:
            out.append((lora, weight))
    return tuple(out)


def checked(name: str, asked: Loras, offered: dict[str, str]) -> Loras:
    """The asked LoRAs, each a name this model is offered (`offered`: name → refusal or ""), its weight
    in −2…2; the same name twice: the last wins."""
    merged: dict[str, float] = {}
    for lora, weight in asked:
        if lora not in offered:
            known = ", ".join(n for n, why in offered.items() if not why) or "none"
            raise ValidationError(name, f"no LoRA named {lora[:80]!r} on this server (offered for this model: {known})")
        if offered[lora]:
            raise ValidationError(name, offered[lora])
        if not (-MAX_WEIGHT <= weight <= MAX_WEIGHT):  # also refuses NaN
            raise ValidationError(name, f"{lora}: weight {weight:g} is outside −{MAX_WEIGHT:g}…{MAX_WEIGHT:g}")
        merged.pop(lora, None)
        merged[lora] = round(weight, 4)
    if len(merged) > MAX_LORAS:
        raise ValidationError(name, f"{len(merged)} LoRAs; at most {MAX_LORAS} at once")
    return tuple(merged.items())


def as_tags(loras: Loras) -> str:
    """The pairs as AUTOMATIC1111 writes them into a prompt."""
    return " ".join(f"<lora:{n}:{w:g}>" for n, w in loras)
