"""The layers stay apart: ui/ reaches the back end through the `pipelines` package alone and never loads
torch; pipelines/ never loads gradio; the front half of pipelines/ (the package, its task modules) loads
no torch; importing app loads nothing."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What ui/ may import from this project: the `pipelines` package itself (its names, and every registered
# task's request type), and ui's own modules. Not pipelines.manager, .local, .images, .masks, .recipe…
UI_MAY_IMPORT = {"pipelines"}


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return set(out.split())


def project_imports(path: Path) -> set[str]:
    """The absolute imports of this project's packages in one file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return {n for n in names if n.split(".")[0] in ("pipelines", "app", "settings", "shapeworld", "bench")}


def test_ui_imports_only_the_pipelines_package():
    for path in sorted((ROOT / "ui").rglob("*.py")):
        assert project_imports(path) <= UI_MAY_IMPORT, (path.name, project_imports(path) - UI_MAY_IMPORT)


def test_ui_imports_no_torch():
    modules = loaded_after("import ui, ui.tabs.txt2img, ui.tabs.inpaint")
    assert "torch" not in modules and "diffusers" not in modules


def test_the_front_loads_no_torch():
    modules = loaded_after("import pipelines, pipelines.studio, pipelines.tasks; from pipelines import TASKS")
    assert "torch" not in modules and "diffusers" not in modules


def test_pipelines_import_no_gradio():
    modules = loaded_after(
        "import pipelines, pipelines.manager, pipelines.local, pipelines.changes, pipelines.sampling, "
        "pipelines.interpolation, pipelines.masks, pipelines.images"
    )
    assert "gradio" not in modules


def test_importing_app_loads_no_model_library_and_parses_nothing():
    modules = loaded_after("sys.argv = ['app.py', '--bogus-flag']; import app")
    assert "torch" not in modules and "diffusers" not in modules
