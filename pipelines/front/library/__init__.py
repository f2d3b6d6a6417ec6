"""The Library: every result kept, found by the words of its prompt, traced to where it came from, compared.

An SQLite index (`library.sqlite`, WAL, FTS5 over the prompts) beside the PNGs in the outputs folder; the
PNGs and the recipes inside them stay the truth, and the index is rebuilt from them whenever it is missing
or damaged. A public demo keeps a library per browser session in memory instead. Imports no torch.
"""

from .index import NO_RECIPE, Library, NoRecipe, NotFound
from .labels import recipe_differences, step_label
from .libraries import Libraries
from .store import user_folder

__all__ = ["NO_RECIPE", "Libraries", "Library", "NoRecipe", "NotFound", "recipe_differences", "step_label",
           "user_folder"]
