"""Atelier's browser UI: Gradio only, no torch. `build_ui(studio)` returns the Blocks; `app.py` launches it."""

from .app import CSS, JS, THEME, build_ui

__all__ = ["CSS", "JS", "THEME", "build_ui"]
