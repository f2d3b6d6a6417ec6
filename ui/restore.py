"""Restoring settings from a PNG's recipe into the tab that made it.
"""

from __future__ import annotations

import gradio as gr

from pipelines import (
    TASKS,
    Recipe,
    Studio,
    read_recipe,
)

from .events import Tab
from .messages import said


def recipe_in(path: str | None, model_names: tuple[str, ...]) -> Recipe | None:
    """The recipe of a dropped picture when it is an Atelier PNG this server can restore; else None."""
    try:
        recipe = read_recipe(path) if path else None
    except OSError:
        return None
    return recipe if recipe is not None and recipe.model in model_names else None


def restore_values(path: str | None, model_names: tuple[str, ...]) -> Recipe | None:
    """The recipe in a dropped PNG, with a readable refusal for anything else."""
    if not path:
        return None
    try:
        recipe = read_recipe(path)
    except OSError:
        raise gr.Error("That file is not an image Atelier can read.", print_exception=False) from None
    if recipe is None:
        raise gr.Error("That image carries no Atelier recipe.", print_exception=False)
    if recipe.model not in model_names:
        offered = f"That image was made with {said(repr(recipe.model))}, which this server does not offer."
        raise gr.Error(offered, print_exception=False)
    return recipe


def recipe_updates(studio: Studio, picker, tabs: dict[str, Tab], tab: Tab, recipe: Recipe) -> dict:
    """What restoring a recipe into `tab` changes: the picker takes its model, every tab follows that
    model, and each of the tab's controls that the recipe has a value for takes it."""
    preset = studio.preset(recipe.model)
    updates = {picker: recipe.model}
    for other in tabs.values():
        updates.update(other.controls.follow(preset))
    off = TASKS.get(recipe.task).request.left_out_when_off()  # e.g. Hires, ticked now, was off for this picture
    updates.update(tab.controls.restore(preset, {**off, **recipe.values()}))
    return updates
