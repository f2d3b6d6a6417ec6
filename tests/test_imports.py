"""The layers stay apart: ui/ reaches the back end through the `pipelines` package alone and never loads
torch; pipelines/ never loads gradio; the front half of pipelines/ (the package, its task modules) loads
no torch; importing app loads nothing."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What ui/ may import from this project: the `pipelines` package itself (its names, and every registered
# task's request type), and ui's own modules. Not pipelines.device.manager, .local, .images, .masks, .recipe…
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
    modules = loaded_after("import pipelines, pipelines.front.studio, pipelines.tasks; from pipelines import TASKS")
    assert "torch" not in modules and "diffusers" not in modules


def test_the_front_never_imports_the_device_side():
    """pipelines/front/ is torch-free by construction: no import of pipelines.device, absolute or relative."""
    for path in sorted((ROOT / "pipelines" / "front").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                absolute = node.module or ""
                if node.level:  # resolve the relative import from the file's package
                    package = path.relative_to(ROOT).parent.parts
                    absolute = ".".join(package[: len(package) - node.level + 1] + ((node.module,) if node.module else ()))
                assert not absolute.startswith("pipelines.device"), (path.name, absolute)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("pipelines.device") for a in node.names), path.name


def test_pipelines_import_no_gradio():
    modules = loaded_after(
        "import pipelines, pipelines.device.manager, pipelines.device.local, pipelines.device.changes, pipelines.device.sampling, "
        "pipelines.tasks.morph.render, pipelines.tasks.masks, pipelines.front.images"
    )
    assert "gradio" not in modules


def test_importing_app_loads_no_model_library_and_parses_nothing():
    modules = loaded_after("sys.argv = ['app.py', '--bogus-flag']; import app")
    assert "torch" not in modules and "diffusers" not in modules
