"""What the page says to a person: refusals in the words of the page, text quoted as text, and a slip
answered with a notice that changes nothing else.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from pipelines import (
    ValidationError,
)


def slip(message: str, outputs) -> dict:
    """A person's slip (an action with nothing to act on) is a short notice that changes nothing else: no
    error over the components, nothing on the page cleared. (A notice reaches the page from queued events.)"""
    gr.Info(said(message))
    return {component: gr.skip() for component in outputs}


NOT_AN_IMAGE = "That file is not an image, or it is damaged."


def said(text: Any) -> str:
    """Text quoted in a message as itself: the page shows messages as HTML, where a prompt's or a LoRA
    tag's `<…>` would vanish as markup."""
    return html.escape(str(text), quote=False)


def field_message(error: ValidationError, labels: dict[str, str]) -> str:
    """A refusal as the person sees the field: "To: must not be empty", not "prompt_b: …"."""
    return said(f"{labels.get(error.field, error.field)}: {str(error).removeprefix(f'{error.field}: ')}")
