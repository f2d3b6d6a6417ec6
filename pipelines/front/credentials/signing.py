"""Signing: a C2PA manifest into every file a run makes, saying it is AI-made, how, and from what.

The manifest has one `c2pa.actions` assertion: `c2pa.created` (trained algorithmic media) for a new
picture, or `c2pa.opened` + `c2pa.edited` (composite with trained algorithmic media) for an edit of an
existing one; the software agent (Atelier and its version) with the model and LoRAs; and the pictures the
run started from as ingredients: the edited picture as `parentOf` (the Library's own signed PNG where the
parent is in it, so its credentials' history is the lineage), any other given picture (a mask, a drawing,
a morph's ends) as `inputTo`. The hard binding covers the whole file but the manifest, so the recipe's text
chunks are signed with the pixels.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..recipe import Recipe
from .identity import Identity

log = logging.getLogger(__name__)

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
PARENT_LABEL = "parent"  # the ingredient `c2pa.opened` names
INGREDIENT_TITLE = "atelier-{}.png"  # an ingredient from the Library: its image id, read back by the reader
MIME_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
              ".mp4": "video/mp4", ".webp": "image/webp"}


@dataclass(frozen=True)
class Origin:
    """What a run started from, for its credentials: the field of the picture it edits ('' when it makes a
    new one) and every picture it was given, by field name."""

    edits: str = ""
    pictures: tuple[tuple[str, Image.Image], ...] = ()
    _files: dict[str, bytes] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, request) -> Origin:
        given = [(f.name, getattr(request, f.name)) for f in dataclasses.fields(request)]
        return cls(request.edits, tuple((name, value) for name, value in given if isinstance(value, Image.Image)))

    def file(self, name: str) -> bytes:
        """A given picture as an uncompressed TIFF, made once for all the run's images: an ingredient's bytes
        are hashed, never shown, and a PNG would cost ten times as long to encode."""
        if name not in self._files:
            buffer = io.BytesIO()
            dict(self.pictures)[name].save(buffer, format="TIFF")
            self._files[name] = buffer.getvalue()
        return self._files[name]

    @property
    def main(self) -> str:
        """The field of the picture the recipe's parent stands for: the edited one, else the first given."""
        return self.edits or (self.pictures[0][0] if self.pictures else "")


class Credentials:
    """Signs files with one identity; reads any file's credentials against the trust anchors given.

    A failure to sign is the caller's to survive (the file is kept unsigned): `failed` logs it once per
    distinct reason, not once per image.
    """

    def __init__(self, identity: Identity, trust: bytes = b""):
        self.identity = identity
        self.trust = trust  # PEM certificates whose signatures count as trusted (--c2pa-trust)
        self.version = _atelier_version()
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    def sign(self, data: bytes, mime: str, recipe: Recipe, origin: Origin = Origin(), *,
             parent: bytes | None = None, model_source: str = "") -> bytes:
        """`data` (a file of type `mime`) with a manifest for the image `recipe` describes. `parent`: the
        Library's PNG of the recipe's parent, when it has it; `model_source`: the model's Hub id, if any.
        Raises whatever the C2PA library raises."""
        import c2pa

        builder = c2pa.Builder(self._manifest(recipe, origin, model_source, mime), context=_context(self.version))
        for definition, mime_type, picture in _ingredients(recipe, origin, parent):
            builder.add_ingredient(definition, mime_type, io.BytesIO(picture))
        info = c2pa.C2paSignerInfo(getattr(c2pa.C2paSigningAlg, self.identity.algorithm.upper()),
                                   self.identity.chain, self.identity.key, None)  # no time-stamp authority offline
        signed = io.BytesIO()
        builder.sign(c2pa.Signer.from_info(info), mime, io.BytesIO(data), signed)
        return signed.getvalue()

    def sign_file(self, path: str | Path, recipe: Recipe, origin: Origin = Origin(), **options) -> None:
        """Sign a file in place (a morph's GIF or MP4), its type read from its extension."""
        from ..outputs import write_whole

        path = Path(path)
        write_whole(path, self.sign(path.read_bytes(), MIME_TYPES[path.suffix.lower()], recipe, origin, **options))

    def failed(self, error: BaseException) -> str:
        """The sentence for a file saved unsigned; the reason logged the first time it is seen."""
        reason = f"{type(error).__name__}: {error}"[:300]
        with self._lock:
            first = reason not in self._logged
            self._logged.add(reason)
        if first:
            log.warning("Content Credentials: could not sign (%s); results are saved without them.", reason,
                        exc_info=error)
        return f"Saved without Content Credentials: signing failed ({reason})."

    def read(self, data: bytes) -> dict[str, Any]:
        """Any file's credentials, validated against this studio's trust anchors (see `reading.read`)."""
        from .reading import read

        return read(data, trust=self.trust, own_chain=self.identity.chain)

    def _manifest(self, recipe: Recipe, origin: Origin, model_source: str, mime: str) -> dict[str, Any]:
        agent = {"name": "Atelier", "version": self.version}
        model = {"model": recipe.model, **({"model_source": model_source} if model_source else {}),
                 **({"loras": ", ".join(f"{n}:{w:g}" for n, w in recipe.loras)} if recipe.loras else {})}
        if origin.edits:
            actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": [PARENT_LABEL]}},
                       {"action": "c2pa.edited", "digitalSourceType": COMPOSITE, "softwareAgent": agent,
                        "description": f"{recipe.task} with {recipe.model}", "parameters": model}]
        else:
            actions = [{"action": "c2pa.created", "digitalSourceType": TRAINED, "softwareAgent": agent,
                        "description": f"{recipe.task} with {recipe.model}", "parameters": model}]
        extension = next((s for s, m in MIME_TYPES.items() if m == mime), ".png")
        return {
            "claim_generator_info": [agent],
            "title": f"{recipe.task}-{recipe.seed}-{recipe.image_id}{extension}",
            "format": mime,
            "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}],
        }


class RunSigning:
    """Signs each file of one run (nothing without credentials); a file that cannot be signed is kept as it
    is, and why is in `failures` (logged once by the credentials)."""

    def __init__(self, credentials: Credentials | None, request, parent: bytes | None, model_source: str):
        self.credentials = credentials
        self.request = request
        self.parent = parent
        self.model_source = model_source
        self.failures: list[str] = []
        self._origin: Origin | None = None

    def __call__(self, data: bytes, mime: str | None, recipe: Recipe) -> bytes:
        """`data` signed, or as it is when signing is off or the type (None: unknown) cannot be signed."""
        if self.credentials is None or mime is None:
            return data
        try:
            if self._origin is None:  # the pictures given, encoded once for all the run's files
                self._origin = Origin.of(self.request)
            return self.credentials.sign(data, mime, recipe, self._origin, parent=self.parent,
                                         model_source=self.model_source)
        except Exception as e:  # noqa: BLE001 — whatever signing raises, the image is kept, unsigned
            self.failures.append(self.credentials.failed(e))
            return data


def _ingredients(recipe: Recipe, origin: Origin, parent: bytes | None) -> list[tuple[dict, str, bytes]]:
    """(definition, type, file) for each picture the run started from; the parent's own signed PNG where
    the Library has it."""
    out = []
    for name, _ in origin.pictures:
        definition = {"title": f"the picture given as {name.replace('_', ' ')}",
                      "relationship": "parentOf" if name == origin.edits else "inputTo"}
        if name == origin.edits:
            definition["label"] = PARENT_LABEL
        if name == origin.main and parent is not None and recipe.parent:
            definition["title"] = INGREDIENT_TITLE.format(recipe.parent)
            out.append((definition, "image/png", parent))
        else:
            out.append((definition, "image/tiff", origin.file(name)))
    return out


def _context(version: str):
    """Builder settings: no thumbnail (the file is the picture), no re-verification after signing (the
    tests read every kind of result back), claims in Atelier's name."""
    import c2pa

    return c2pa.Context.from_dict({
        "builder": {"thumbnail": {"enabled": False}, "claim_generator_info": {"name": "Atelier", "version": version}},
        "verify": {"verify_after_sign": False, "remote_manifest_fetch": False, "ocsp_fetch": False},
    })


def _atelier_version() -> str:
    """The version pyproject.toml gives (read as text: tomllib is not in Python 3.10)."""
    try:
        text = (Path(__file__).resolve().parents[3] / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return found.group(1) if found else "unknown"
