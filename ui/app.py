"""The page: header, model picker with its residency panel, a tab per task, and what joins the tabs —
every tab follows the model picker, "Send to" hands an image from one tab to another, and dropping an
Atelier PNG on a tab's recipes restores that tab's settings."""

from __future__ import annotations

import importlib
import importlib.util

import gradio as gr

from pipelines import Studio

from . import models, styles
from .common import Tab, picked, restore_values

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


def tab_modules(studio: Studio) -> dict:
    """The tab module of every registered task that has one (`ui/tabs/<task>.py`), in registry order."""
    names = [name for name in studio.task_names if importlib.util.find_spec(f"{__package__}.tabs.{name}")]
    return {name: importlib.import_module(f"{__package__}.tabs.{name}") for name in names}


def build_ui(studio: Studio, model: str | None = None) -> gr.Blocks:
    """The whole page for `studio`, showing `model` first (the first preset when not given)."""
    return build_page(studio, model)[0]


def build_page(studio: Studio, model: str | None = None) -> tuple[gr.Blocks, dict[str, Tab]]:
    """The page and its tabs by task name."""
    with gr.Blocks(title="Atelier", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        with gr.Row(equal_height=True):
            gr.Markdown("# Atelier\nWords into images, every tab from the same model.", elem_id="title")
            picker = gr.Dropdown(
                [(studio.preset(n).label, n) for n in studio.model_names],
                value=model or studio.model_names[0],
                label="Model",
                scale=0,
                min_width=300,
                elem_id="model-picker",
            )
        models.render(studio, picker)
        tabs: dict[str, Tab] = {}
        with gr.Tabs() as switcher:
            for name, module in tab_modules(studio).items():
                with gr.Tab(module.TITLE, id=name, elem_id=f"tab-{name}"):
                    tabs[name] = module.render(studio, picker)
        styles.render(studio, picker, tabs)
        _follow_the_model(studio, picker, tabs)
        for name, tab in tabs.items():
            _wire_send(name, tab, tabs, switcher)
            _wire_restore(studio, tab, picker, tabs)
    return demo, tabs


def _follow_the_model(studio: Studio, picker: gr.Dropdown, tabs: dict[str, Tab]) -> None:
    """Choosing a model gives every tab that model's sizes, steps, guidance and samplers."""

    def follow(name: str) -> dict:
        preset = studio.preset(name)
        return {component: update for tab in tabs.values() for component, update in tab.controls.follow(preset).items()}

    following = [component for tab in tabs.values() for component in tab.controls.following]
    # `input`, not `change`: restoring a recipe sets the picker too, with the recipe's own values.
    picker.input(follow, picker, following, api_visibility="private", queue=False)


def _wire_send(name: str, tab: Tab, tabs: dict[str, Tab], switcher: gr.Tabs) -> None:
    """A "Send to" button for every other tab that takes an image: the selected image (and its id, for
    lineage) lands there and that tab opens."""
    with tab.results.send_row:
        for target, other in tabs.items():
            if other.receive is None or target == name:
                continue

            def send(gallery, recipes, index, accept=other.receive.accept, target=target):
                image, parent = picked(gallery, recipes, index)
                return (*accept(image, parent), gr.Tabs(selected=target))

            gr.Button(f"Send to {other.title}", size="sm", variant="secondary").click(
                send,
                [tab.results.gallery, tab.results.recipes, tab.results.selected],
                [*other.receive.outputs, switcher],
                api_visibility="private",
            )


def _wire_restore(studio: Studio, tab: Tab, picker: gr.Dropdown, tabs: dict[str, Tab]) -> None:
    """An Atelier PNG dropped on the tab's recipes: its model is chosen (every tab follows it) and each
    of this tab's controls that the recipe has a value for takes it."""
    following = [component for other in tabs.values() for component in other.controls.following]
    outputs = list(dict.fromkeys([picker, *following, *tab.controls.fields.values()]))

    def restore(path: str | None) -> dict:
        recipe = restore_values(path, studio.model_names)
        if recipe is None:
            return {}
        preset = studio.preset(recipe.model)
        updates = {picker: recipe.model}
        for other in tabs.values():
            updates.update(other.controls.follow(preset))
        updates.update(tab.controls.restore(preset, recipe.values()))
        gr.Info("Settings restored from the image's recipe.")
        return updates

    tab.results.restore.upload(restore, tab.results.restore, outputs, api_visibility="private")
