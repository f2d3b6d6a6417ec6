"""Settings: one dataclass, read from flags over ATELIER_* variables over defaults."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from settings import Settings, env_name, load_settings


def test_defaults_serve_the_embedded_model_locally():
    settings, _ = load_settings([], environ={})
    assert settings == Settings()
    assert settings.host == "127.0.0.1" and settings.model == "shapes"


def test_flags_override_environment_which_overrides_defaults():
    env = {"ATELIER_PORT": "9000", "ATELIER_QUEUE_SIZE": "3", "ATELIER_GPU_SPEED": "eager"}
    settings, _ = load_settings(["--port", "9100"], environ=env)
    assert (settings.port, settings.queue_size, settings.gpu_speed) == (9100, 3, "eager")


def test_a_bad_environment_value_names_the_variable():
    with pytest.raises(SystemExit, match="ATELIER_PORT"):
        load_settings([], environ={"ATELIER_PORT": "eighty"})


def test_a_space_gets_public_demo_defaults():
    settings, _ = load_settings([], environ={"SPACE_ID": "someone/atelier"})
    assert settings.public_demo and settings.outputs == "" and settings.queue_size <= 8
    assert settings.host == "0.0.0.0" and not settings.open_browser


def test_model_dirs_are_parsed_and_checked():
    assert Settings(model_dirs="a=/x, b=/y").model_folders == {"a": "/x", "b": "/y"}
    with pytest.raises(ValueError, match="name=path"):
        Settings(model_dirs="nopath").model_folders


def test_help_documents_every_setting_and_its_variable():
    out = subprocess.run([sys.executable, "app.py", "--help"], capture_output=True, text=True, check=True).stdout
    for f in dataclasses.fields(Settings):
        assert "--" + f.name.replace("_", "-") in out
        assert env_name(f.name) in out


def test_readme_configuration_table_lists_every_setting():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for f in dataclasses.fields(Settings):
        assert f"| `--{f.name.replace('_', '-')}` | `{env_name(f.name)}` |" in readme, f.name


def test_zerogpu_wrapper_is_the_identity_off_spaces_and_sizes_by_work(monkeypatch):
    from pipelines.zerogpu import MAX_SECONDS, MIN_SECONDS, gpu_seconds, on_gpu

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)

    def work():
        return 42

    assert on_gpu(work, 30)() == 42
    assert gpu_seconds(1, 64, 64, 1) == MIN_SECONDS
    assert gpu_seconds(30, 1024, 1024, 4) > gpu_seconds(30, 512, 512, 1)
    assert gpu_seconds(150, 1024, 1024, 8) == MAX_SECONDS


def test_every_job_asks_zerogpu_for_time_by_its_own_size_and_count(tiny_model_dir, monkeypatch):
    """The accelerator entry point is wrapped once per job, sized by what the request says it makes
    (a morph's frames, an image task's own size), as a plain function (spaces.GPU reads its name)."""
    import pipelines.local
    from pipelines import MorphRequest
    from tests.conftest import TINY, make_studio, tiny_registry

    asked = []

    def on_gpu(fn, seconds):
        asked.append((fn.__name__, seconds))
        return fn

    monkeypatch.setattr(pipelines.local, "on_gpu", on_gpu)
    monkeypatch.setattr(pipelines.local, "gpu_seconds", lambda steps, w, h, n: (steps, w, h, n))
    studio = make_studio(tiny_registry(tiny_model_dir))
    studio.submit(MorphRequest(model=TINY, prompt="a", prompt_b="b", num_frames=3, steps=2, width=96, height=64,
                               even_pacing=False)).result()
    assert asked == [("accelerator", (2, 96, 64, 3))]
