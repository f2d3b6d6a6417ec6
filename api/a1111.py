"""AUTOMATIC1111's names and shapes, translated onto Atelier's requests and back.

The names come from each request setting's declaration (its `a1111`), plus `UNDECLARED` for the two it
does not carry. Values pass through untouched: a setting left out is the model's own where the
declaration says it follows the model, else the request type's default, and every range is checked by
the request types themselves, so a refused value is answered with their sentence under the client's name.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import re
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

import pipelines
from pipelines import ModelPreset, Recipe, ValidationError, settings_of

# AUTOMATIC1111's names the declarations do not carry (each request field's own is its `a1111`).
UNDECLARED = {"styles": "styles", "inpainting_fill": "fill"}
# The request types behind each route: txt2img; img2img with a mask (Inpaint) or without (Sketch).
REQUESTS = {"txt2img": (pipelines.Txt2ImgRequest,), "img2img": (pipelines.InpaintRequest, pipelines.SketchRequest)}
# inpainting_fill's numbers (fill, original, latent noise, latent nothing) → Inpaint's starting points.
FILL_MODES = {0: "fill", 1: "original", 2: "noise", 3: "fill"}
# Accepted and ignored: said in the answer's notices when a body asks for them.
IGNORED = {
    "restore_faces": "there is no face restorer",
    "tiling": "tiling is not available",
    "subseed_strength": "variation seeds are not available",
    "script_name": "there are no scripts",
    "alwayson_scripts": "there are no scripts",
}


def names(request_type: type) -> dict[str, str]:
    """AUTOMATIC1111's field → the request's, from each setting's declaration (the model comes from
    `override_settings` or the options instead)."""
    declared = {s.a1111: name for name, s in settings_of(request_type).items() if s.a1111 and name != "model"}
    own = {f.name for f in dataclasses.fields(request_type)}
    return {**declared, **{theirs: ours for theirs, ours in UNDECLARED.items() if ours in own}}


def refusal(error: ValidationError, kind: str = "txt2img") -> str:
    """A request type's refusal under the name the client sent: "cfg_scale: 31 is out of range 0–30"."""
    theirs = {ours: theirs for theirs, ours in names(REQUESTS[kind][0]).items()}
    for request_type in REQUESTS[kind][1:]:
        theirs.update({ours: name for name, ours in names(request_type).items()})
    message = str(error).removeprefix(f"{error.field}: ")
    return f"{theirs.get(error.field, error.field)}: {message}"


def request_values(body: dict[str, Any], request_type: type, preset: ModelPreset) -> dict[str, Any]:
    """The request fields an AUTOMATIC1111 body asks for; where it says nothing, the model's own value
    for the settings declared to follow the model (size, steps, guidance, sampler), as the page shows."""
    table = names(request_type)
    values = {table[name]: value for name, value in body.items() if name in table and value is not None}
    if "styles" in values and isinstance(values["styles"], list):
        values["styles"] = tuple(values["styles"])
    if "fill" in values:
        values["fill"] = FILL_MODES.get(values["fill"], values["fill"])
    if "scheduler" in values:
        values["scheduler"] = sampler_named(values["scheduler"], body.get("scheduler"), preset.schedulers)
    elif body.get("sampler_index"):  # the older name of the field
        values["scheduler"] = sampler_named(body["sampler_index"], body.get("scheduler"), preset.schedulers)
    if values.get("hires_steps") == 0:  # AUTOMATIC1111's "as many as the first pass": here, the upscaler's own
        del values["hires_steps"]
    hires = bool(values.get("hires"))  # its settings mean nothing without the pass (clients send them always)
    values = {k: v for k, v in values.items() if hires or not k.startswith("hires")}
    for name, declared in settings_of(request_type).items():
        if declared.preset and (hires or not name.startswith("hires")):
            values.setdefault(name, getattr(preset, declared.preset))
    return values


def sampler_named(sampler: Any, schedule: Any, offered: tuple[str, ...]) -> Any:
    """AUTOMATIC1111 1.9 split "DPM++ 2M Karras" into a sampler and a schedule: join them where that
    names one of ours; "automatic" (or none) leaves the sampler as it is."""
    if isinstance(sampler, str) and isinstance(schedule, str) and schedule.lower() not in ("", "automatic"):
        joined = f"{sampler} {schedule.capitalize()}"
        if joined in offered:
            return joined
    return sampler


def ignored_notices(body: dict[str, Any]) -> list[str]:
    """A sentence for each setting the body asks for that Atelier accepts and ignores."""
    notices = [f"{name} was ignored: {why}." for name, why in IGNORED.items() if body.get(name)]
    overrides = sorted(set(body.get("override_settings") or {}) - {"sd_model_checkpoint"})
    if overrides:
        notices.append(f"override_settings {', '.join(overrides)} were ignored: only sd_model_checkpoint is read.")
    return notices


def model_hash(preset: ModelPreset) -> str:
    """A short id of where the model's weights come from (its Hub id or folder), stable across restarts."""
    return hashlib.sha256(preset.source.encode()).hexdigest()[:10]


def checkpoint_name(text: Any) -> str:
    """The preset name in what a client sends: a title, possibly with a file suffix and "[hash]"."""
    name = re.sub(r"\s*\[[0-9a-fA-F]+\]$", "", str(text)).strip()
    return name.removesuffix(".safetensors")


def decode_image(field: str, text: Any) -> Image.Image:
    """A picture sent as base64 or a data: URL, opened (header read, no pixels decoded yet)."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(field, "send the picture as base64 or a data: URL")
    if text.startswith(("http://", "https://")):
        raise ValidationError(field, "addresses are not fetched; send the picture itself, as base64")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        data = base64.b64decode(text.strip())
    except (binascii.Error, ValueError):
        raise ValidationError(field, "not valid base64") from None
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ValidationError(field, "too large to open") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError(field, "not a picture, or a damaged one") from None


def inverted(mask: Image.Image) -> Image.Image:
    """AUTOMATIC1111's inpainting_mask_invert: repaint what the mask leaves black."""
    return ImageOps.invert(mask.convert("L"))


def encode_png(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def info(recipes: list[Recipe], body: dict[str, Any], model: str, model_id: str, notices: list[str]) -> dict[str, Any]:
    """The `info` AUTOMATIC1111 answers a generation with (a JSON string there), from the recipes made."""
    first = recipes[0] if recipes else None
    return {
        "prompt": first.prompt if first else body.get("prompt", ""),
        "all_prompts": [r.prompt for r in recipes],
        "negative_prompt": first.negative_prompt if first else body.get("negative_prompt", ""),
        "all_negative_prompts": [r.negative_prompt for r in recipes],
        "seed": first.seed if first else body.get("seed", -1),
        "all_seeds": [r.seed for r in recipes],
        "subseed": -1,
        "all_subseeds": [-1 for _ in recipes],
        "subseed_strength": 0,
        "width": first.width if first else body.get("width"),
        "height": first.height if first else body.get("height"),
        "sampler_name": first.scheduler if first else body.get("sampler_name"),
        "cfg_scale": first.guidance_scale if first else body.get("cfg_scale"),
        "steps": first.steps if first else body.get("steps"),
        "batch_size": body.get("batch_size") or 1,
        "restore_faces": False,
        "sd_model_name": model,
        "sd_model_hash": model_id,
        "denoising_strength": first.settings.get("strength") if first else None,
        "styles": list(first.styles) if first else list(body.get("styles") or []),
        "infotexts": [r.a1111_parameters() for r in recipes],
        "index_of_first_image": 0,
        "extra_generation_params": {},
        "clip_skip": 1,
        "is_using_inpainting_conditioning": bool(first and first.task == "inpaint"),
        "image_ids": [r.image_id for r in recipes],
        "notices": list(notices),
        "version": "atelier",
    }


def parse_parameters(text: str) -> dict[str, Any]:
    """AUTOMATIC1111's `parameters` text read into its fields: "Prompt", "Negative prompt", then every
    "Key: value" of the last line ("Size" also as "Size-1" and "Size-2")."""
    lines = text.strip().split("\n")
    settings = lines.pop() if lines and re.match(r"^\s*\w[\w ]*:", lines[-1]) else ""
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line.removeprefix("Negative prompt:").strip()
        (negative if in_negative else prompt).append(line)
    found: dict[str, Any] = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, value in re.findall(r'\s*([\w ]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)', settings):
        found[key.strip()] = value.strip()
        if key.strip() == "Size" and "x" in value:
            found["Size-1"], _, found["Size-2"] = value.strip().partition("x")
    return found
