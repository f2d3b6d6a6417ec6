"""The layers stay apart: ui/ never loads torch, pipelines/ never loads gradio, importing app loads nothing."""

import subprocess
import sys


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_ui_imports_no_torch():
    assert "torch" not in loaded_after("import ui")


def test_pipelines_import_no_gradio():
    modules = loaded_after(
        "import pipelines, pipelines.manager, pipelines.txt2img, pipelines.variations, "
        "pipelines.interpolation, pipelines.inpainting, pipelines.masks, pipelines.images"
    )
    assert "gradio" not in modules


def test_importing_app_loads_no_model_library_and_parses_nothing():
    modules = loaded_after("sys.argv = ['app.py', '--bogus-flag']; import app")
    assert "torch" not in modules and "diffusers" not in modules
