"""One module per task that has a tab, named after the task (`ui/tabs/<task>.py`): `TITLE` and
`render(studio, model) -> Tab`. The page builds a tab for every registered task that has a module here,
in the registry's order; a task without one (Outpaint) is served inside another tab."""
