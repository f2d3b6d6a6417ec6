"""Every API example in the README runs against the app, as written (only the address changes)."""

import re
from pathlib import Path

import pytest
from PIL import Image

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = re.findall(r"```python\n# api: (\w+)\n(.*?)```", README.read_text(), flags=re.S)


def test_every_endpoint_has_an_example():
    """Every endpoint the app's API page lists (each registered task's and the Library's), read from the
    page itself, so a new task or endpoint without an example fails here."""
    from pipelines import TASKS, Registry, Studio
    from tests.helpers import CannedRunner
    from ui.app import build_page

    demo, _ = build_page(Studio(CannedRunner(), Registry()), model="shapes")
    endpoints = {name.removeprefix("/") for name in demo.get_api_info()["named_endpoints"]}
    assert set(TASKS.names) <= endpoints
    assert sorted(name for name, _ in EXAMPLES) == sorted(endpoints)


@pytest.mark.parametrize("name,code", EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_readme_example_runs(app_url, tmp_path, monkeypatch, name, code):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (64, 64), (255, 255, 255)).save("input.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask.save("mask.png")
    sketch = Image.new("RGB", (256, 256), (255, 255, 255))
    sketch.paste((35, 80, 230), (32, 32, 96, 96))  # a blue blob at the top left
    sketch.save("sketch.png")
    scope: dict = {}
    exec(compile(code.replace("http://127.0.0.1:7860/", app_url), f"README:{name}", "exec"), scope)
    assert scope.get("images") or scope.get("frames") or scope.get("rows") or scope.get("chain")
    if name == "credentials":  # what the API hands out is the signed file, and the endpoint says so
        assert scope["credentials"]["valid"] and scope["credentials"]["ai_generated"]
