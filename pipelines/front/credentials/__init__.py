"""Content Credentials (C2PA): every result signed with what made it and what it was made from, and any
file's credentials read back in plain words. Imports no torch; the C2PA library loads when first used."""

from .identity import Identity, trust_anchors
from .reading import CHANGED_WORDS, describe, mime_of, read
from .signing import MIME_TYPES, Credentials, Origin, RunSigning

__all__ = ["CHANGED_WORDS", "MIME_TYPES", "Credentials", "Identity", "Origin", "RunSigning", "describe", "mime_of", "read",
           "trust_anchors"]
