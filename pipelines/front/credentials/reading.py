"""Reading: any file's Content Credentials, validated, as plain data and in plain words.

Works on files of any maker (Atelier's, Photoshop's, a camera's): what is read is the C2PA manifest, not
Atelier's recipe. Trust is only what the anchors given make it (`--c2pa-trust`); a valid signature by an
unknown signer is valid, not trusted.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Container
from typing import Any

from .signing import COMPOSITE, TRAINED

UNTRUSTED = "signingCredential.untrusted"
CHANGED = ("assertion.dataHash.mismatch", "assertion.boxesHash.mismatch", "assertion.bmffHash.mismatch")
CHANGED_WORDS = "The image was changed after it was signed: its credentials no longer match it."
NONE_WORDS = "No Content Credentials: nothing in this file says where it came from."
LIBRARY_ID = re.compile(r"^atelier-([0-9a-f]{16})\.png$")
SOURCE_WORDS = {
    TRAINED: "made by a generative AI model",
    COMPOSITE: "an existing picture edited with a generative AI model",
    "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia": "made by an algorithm (not trained AI)",
    "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture": "a photograph or recording from a device",
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic": "a composite including synthetic elements",
}
AI_MADE = (TRAINED, COMPOSITE, "http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic")


def mime_of(data: bytes) -> str | None:
    """The type of a file from its first bytes (a drop zone's name and extension prove nothing)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return None


def read(data: bytes, *, trust: bytes = b"", own_chain: bytes = b"") -> dict[str, Any]:
    """A file's credentials: {present, valid, trusted, changed, signer, own, made_with, source_type,
    ai_generated, edited, model, description, ingredients, problems, manifest}; `present` False (with
    `error`) for a file that carries none or cannot be read."""
    import c2pa

    mime = mime_of(data)
    if mime is None:
        return {"present": False, "error": "not a PNG, JPEG, GIF, WebP or MP4 file"}
    settings: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if trust:
        settings["trust"] = {"user_anchors": trust.decode("utf-8", "replace")}
    try:
        with c2pa.Reader(mime, io.BytesIO(data), context=c2pa.Context.from_dict(settings)) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError as e:
        return {"present": False, "error": str(e)}
    return summary(store, own_serial=_serial(own_chain))


def summary(store: dict[str, Any], own_serial: str = "") -> dict[str, Any]:
    """The facts a person asks of a manifest store, from the Reader's JSON."""
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    failures = [s for s in store.get("validation_status") or [] if s.get("code")]
    codes = {s["code"] for s in failures}
    actions = [a for assertion in active.get("assertions", []) if assertion.get("label", "").startswith("c2pa.actions")
               for a in assertion.get("data", {}).get("actions", [])]
    made = next((a for a in actions if a.get("digitalSourceType")), actions[-1] if actions else {})
    source_type = made.get("digitalSourceType", "")
    signature = active.get("signature_info") or {}
    generator = (active.get("claim_generator_info") or [{}])[0]
    return {
        "present": bool(active),
        "valid": bool(active) and not (codes - {UNTRUSTED}),
        "trusted": bool(active) and not codes and store.get("validation_state") == "Trusted",
        "changed": bool(codes & set(CHANGED)),
        "signer": signature.get("common_name") or signature.get("issuer") or "",
        "issuer": signature.get("issuer") or "",
        "own": bool(own_serial) and signature.get("cert_serial_number") == own_serial,
        "made_with": " ".join(str(generator.get(k)) for k in ("name", "version") if generator.get(k)),
        "source_type": source_type,
        "ai_generated": source_type in AI_MADE,
        "edited": any(a.get("action") == "c2pa.edited" for a in actions),
        "model": str((made.get("parameters") or {}).get("model") or ""),
        "description": str(made.get("description") or ""),
        "ingredients": [_ingredient(i) for i in active.get("ingredients", [])],
        "problems": [{"code": s["code"], "explanation": s.get("explanation", "")} for s in failures
                     if s["code"] != UNTRUSTED],
        "manifest": store,
    }


def describe(credentials: dict[str, Any], in_library: Container[str] = ()) -> list[str]:
    """The credentials in plain words, a sentence each; `in_library`: image ids the person's Library has."""
    if not credentials.get("present"):
        return [NONE_WORDS]
    lines = []
    if credentials["changed"]:
        lines.append(CHANGED_WORDS)
    signer = f"“{credentials['signer'] or 'an unnamed signer'}”"
    if credentials["trusted"]:
        lines.append(f"Signed by {signer}, a trusted signer; the signature is valid.")
    elif credentials["valid"]:
        whose = "this studio's own key" if credentials["own"] else "a signer not on this studio's trust list"
        lines.append(f"The signature is valid, by {signer} — {whose}, so it is not trusted.")
    elif not credentials["changed"]:
        why = "; ".join(p["explanation"] or p["code"] for p in credentials["problems"][:3])
        lines.append(f"The credentials are broken and cannot be relied on ({why}).")
    made = f"Made with {credentials['made_with']}" if credentials["made_with"] else "Made"
    model = f", model {credentials['model']}" if credentials["model"] else ""
    if credentials["source_type"]:
        kind = SOURCE_WORDS.get(credentials["source_type"], credentials["source_type"].rsplit("/", 1)[-1])
        ai = "AI-generated: " if credentials["ai_generated"] else ""
        lines.append(f"{made}{model}. {ai}{kind}.")
    else:
        lines.append(f"{made}{model}.")
    for ingredient in credentials["ingredients"]:
        what = "Edited from" if ingredient["relationship"] == "parentOf" else "Used"
        where = " — in your Library (see “Where it came from”)" if ingredient["image_id"] in in_library else ""
        signed = ", itself signed" if ingredient["signed"] else ""
        lines.append(f"{what} {ingredient['title']}{signed}{where}.")
    return lines


def _ingredient(ingredient: dict[str, Any]) -> dict[str, Any]:
    title = str(ingredient.get("title") or "an untitled picture")
    found = LIBRARY_ID.match(title)
    return {"title": title, "relationship": ingredient.get("relationship") or "componentOf",
            "image_id": found.group(1) if found else None, "signed": bool(ingredient.get("active_manifest"))}


def _serial(chain: bytes) -> str:
    """The serial number of a chain's first certificate, as the Reader prints it."""
    if not chain:
        return ""
    from cryptography import x509

    return str(x509.load_pem_x509_certificates(chain)[0].serial_number)
