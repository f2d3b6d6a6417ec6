"""The front: what a request is and what its results become, without torch.

Settings declared once (`fields`), the request types' shared part and checks (`requests`), the Studio that
validates, draws seeds and finishes results (`studio`), recipes, the Library, styles, LoRA files and model
presets as plain data, safe uploads, whole-file writes; and the runner seam it hands work across
(`runner`: the `Runner` protocol, `Task`, `Output`; `jobs`). Nothing here imports `pipelines.device`.
"""
