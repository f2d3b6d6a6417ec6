"""The page: header, model picker with its residency panel, the four tabs, and "Send to" between them."""

from __future__ import annotations

import gradio as gr

from pipelines import Studio

from . import inpaint, models, morph, txt2img, variations
from .common import ResultPanel, picked

THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate", radius_size="md")
CSS = """
.hint { opacity: .7; font-size: .85em; margin-top: -.4em }
footer { display: none !important }
/* A small picture (the embedded model's 64×64) fills its frame instead of sitting there as a thumbnail. */
.source-image img { width: 100%; height: 100%; object-fit: contain }
"""
# Ctrl/Cmd+Enter presses the visible tab's primary button; Esc presses its Stop.
JS = """
() => {
  document.addEventListener('keydown', (e) => {
    const visible = (el) => el && el.offsetParent !== null;
    const pick = (sel) => [...document.querySelectorAll(sel)].find(visible);
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { pick('button.primary')?.click(); e.preventDefault(); }
    if (e.key === 'Escape') { pick('button.stop')?.click(); }
  });
}
"""


def build_ui(studio: Studio) -> gr.Blocks:
    with gr.Blocks(title="Atelier", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        with gr.Row(equal_height=True):
            gr.Markdown("# Atelier\nWords into images: generate, vary, morph and repaint.", elem_id="title")
            model = gr.Dropdown(
                [(studio.preset(n).label, n) for n in studio.model_names],
                value=studio.settings.model,
                label="Model",
                scale=0,
                min_width=300,
                elem_id="model-picker",
            )
        models.render(studio, model)
        with gr.Tabs() as tabs:
            with gr.Tab("Text to image", id="txt2img"):
                t2i = txt2img.render(studio, model)
            with gr.Tab("Variations", id="variations"):
                var = variations.render(studio, model)
            with gr.Tab("Morph", id="morph"):
                mor = morph.render(studio, model)
            with gr.Tab("Inpaint", id="inpaint"):
                inp = inpaint.render(studio, model)
        panels = [t2i.results, var.results, mor.results, inp.results]
        receivers = {"variations": var.receive, "inpaint": inp.receive, "morph": mor.receive}
        for panel in panels:
            _wire_send(panel, receivers, tabs)
    return demo


def _wire_send(panel: ResultPanel, receivers: dict, tabs: gr.Tabs) -> None:
    """Each "Send to" button hands the selected image (and its id, for lineage) to the target tab."""
    for target, button in panel.send.items():
        outputs, accept = receivers[target]

        def send(gallery, recipes, index, accept=accept, target=target):
            image, parent = picked(gallery, recipes, index)
            return (*accept(image, parent), gr.Tabs(selected=target))

        button.click(send, [panel.gallery, panel.recipes, panel.selected], [*outputs, tabs], api_visibility="private")
