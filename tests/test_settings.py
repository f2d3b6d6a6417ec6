"""Settings: one dataclass, read from flags over ATELIER_* variables over defaults."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from settings import Settings, _shown, env_name, load_settings


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
    flat = " ".join(out.split())  # argparse wraps lines
    assert "None" not in flat
    assert "(default: 7860)" in flat and "(default: shapes)" in flat and "(default: on)" in flat


def test_readme_configuration_table_lists_every_setting():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for f in dataclasses.fields(Settings):
        assert f"| `--{f.name.replace('_', '-')}` | `{env_name(f.name)}` |" in readme, f.name


def test_readme_configuration_table_shows_every_default_the_app_starts_with():
    """The table's Default column is the dataclass's: a changed default cannot leave the README behind."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    for f in dataclasses.fields(Settings):
        row = re.search(rf"^\| `--{f.name.replace('_', '-')}` \| `{env_name(f.name)}` \|([^|]*)\|", readme, re.M)
        shown = row.group(1).strip() or "empty"
        written = f"{f.default:g}" if isinstance(f.default, float) else _shown(f.default)  # 0, not 0.0
        assert shown == written, (f.name, shown, written)


@pytest.mark.parametrize("name", ["outputs", "max_pixels"])
def test_help_and_readme_say_the_same_of_what_a_setting_does(name):
    """What an empty --outputs keeps and what --max-pixels limits, the same words in --help and the README."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `--{name.replace('_', '-')}` |"))
    said = next(f.metadata["help"] for f in dataclasses.fields(Settings) if f.name == name)
    assert row.split(" | ")[-1].removesuffix(" |") == said


def test_zerogpu_wrapper_is_the_identity_off_spaces_and_sizes_by_work(monkeypatch):
    from pipelines.device.zerogpu import MAX_SECONDS, MIN_SECONDS, gpu_seconds, on_gpu

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
    import pipelines.device.local
    from pipelines import MorphRequest
    from tests.conftest import TINY, make_studio, tiny_registry

    asked = []

    def on_gpu(fn, seconds):
        asked.append((fn.__name__, seconds))
        return fn

    monkeypatch.setattr(pipelines.device.local, "on_gpu", on_gpu)
    monkeypatch.setattr(pipelines.device.local, "gpu_seconds", lambda steps, w, h, n: (steps, w, h, n))
    studio = make_studio(tiny_registry(tiny_model_dir))
    studio.submit(MorphRequest(model=TINY, prompt="a", prompt_b="b", num_frames=3, steps=2, width=96, height=64,
                               even_pacing=False)).result()
    assert asked == [("accelerator", (2, 96, 64, 3))]


def test_gradios_queue_polls_at_a_pace_that_leaves_the_cores_to_the_model(caplog):
    """At Gradio's own 1 ms and 10 ms a small machine lost CPU to its queue's wake-ups (bench/speed.py); the
    pinned Gradio has both intervals, so an upgrade that renames them fails here."""
    import types

    import app
    from pipelines import Registry, Studio
    from tests.helpers import CannedRunner

    def queue(flags):
        settings, _ = load_settings(flags, environ={})
        return app.build_app(settings, Studio(CannedRunner(), Registry()))._queue

    made = queue([])
    assert (made.sleep_when_free, made.progress_update_sleep_when_free) == (0.02, 0.2)
    made = queue(["--queue-poll-ms", "1"])  # Gradio's own pace
    assert (made.sleep_when_free, made.progress_update_sleep_when_free) == (0.001, 0.01)
    for wrong in ("0", "5000"):
        with pytest.raises(SystemExit, match=f"--queue-poll-ms: expected 1 to 1000, got {wrong}"):
            load_settings(["--queue-poll-ms", wrong], environ={})
    windows = types.SimpleNamespace(sleep_when_free=0.05, progress_update_sleep_when_free=0.1)
    app.poll_gently(windows, 0.02)  # never more often than Gradio's own
    assert vars(windows) == {"sleep_when_free": 0.05, "progress_update_sleep_when_free": 0.2}
    older = types.SimpleNamespace(sleep_when_free=0.001)  # a Gradio without one of them: said, the other set
    app.poll_gently(older, 0.02)
    assert vars(older) == {"sleep_when_free": 0.02} and "progress_update_sleep_when_free" in caplog.text


def test_a_plain_start_is_quiet_and_says_where_to_open_the_app(tmp_path):
    """`python app.py` on a machine with no screen: no library warnings, no browser attempted in vain,
    one line with the address to open."""
    import os
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    app = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--outputs", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        lines = [app.stdout.readline() for _ in range(2)]
    finally:
        app.terminate()
        stderr = app.communicate(timeout=30)[1]
    assert lines[0].startswith("Outputs: ")
    assert f"http://127.0.0.1:{port}/ (open this address in a browser" in lines[1]
    assert "torchvision" not in stderr and "Traceback" not in stderr, stderr


def front_matter() -> dict[str, str]:
    """The Space's configuration: the README's front matter, `key: value` a line."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text().split("---")[1]
    return {key.strip(): value.strip().strip('"') for key, value in
            (line.split(":", 1) for line in text.strip().splitlines())}


def test_the_code_runs_on_the_python_the_space_declares():
    """vermin reads every module for syntax, modules and functions newer than the front matter's Python."""
    root = Path(__file__).resolve().parent.parent
    python = ".".join(front_matter()["python_version"].split(".")[:2])
    checked = subprocess.run(
        [str(Path(sys.executable).parent / "vermin"), f"-t={python}-", "--violations", "--no-tips",
         "--eval-annotations", "pipelines", "ui", "shapeworld", "bench", "tests", "app.py", "settings.py"],
        capture_output=True, text=True, cwd=root,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_spaces_gradio_is_one_requirements_txt_accepts():
    from packaging.requirements import Requirement

    root = Path(__file__).resolve().parent.parent
    requirements = [Requirement(line.split("#")[0]) for line in (root / "requirements.txt").read_text().splitlines()
                    if line.split("#")[0].strip()]
    gradio = next(r for r in requirements if r.name == "gradio")
    assert front_matter()["sdk"] == "gradio" and gradio.specifier.contains(front_matter()["sdk_version"])


@pytest.mark.timeout(600)
def test_requirements_txt_installs_on_the_python_the_space_declares(tmp_path):
    """A Space installs requirements.txt with the front matter's Python: pip resolves it for that Python
    from wheels alone (nothing installed). Skipped, saying so, where no package index can be reached."""
    root = Path(__file__).resolve().parent.parent
    python = front_matter()["python_version"]
    resolved = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--only-binary=:all:", "--python-version",
         python, "--target", str(tmp_path), "-r", str(root / "requirements.txt")],
        capture_output=True, text=True, cwd=root,
    )
    unreachable = ("Failed to establish a new connection", "Temporary failure in name resolution",
                   "Network is unreachable", "Max retries exceeded")
    if resolved.returncode and any(sign in resolved.stderr for sign in unreachable):
        pytest.skip(f"no package index can be reached to resolve requirements.txt for Python {python}")
    assert resolved.returncode == 0, resolved.stderr[-3000:]


def test_on_zerogpu_the_default_model_is_loaded_at_start_up(monkeypatch):
    import app
    from pipelines.device.zerogpu import on_zerogpu

    settings, _ = load_settings(["--device", "cpu", "--outputs", ""], environ={})
    assert not on_zerogpu({}) and on_zerogpu({"SPACES_ZERO_GPU": "true"})
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    elsewhere = app.build_studio(settings)  # a model process of its own, its model loaded on first use
    try:
        assert [m.state for m in elsewhere.residency()][0] != "resident"
    finally:
        elsewhere.close()
    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    assert [m.model for m in app.build_studio(settings).residency() if m.state == "resident"] == ["shapes"]


@pytest.mark.parametrize("flag, env", [("--dtype", "ATELIER_DTYPE"), ("--gpu-speed", "ATELIER_GPU_SPEED")])
def test_a_device_setting_out_of_its_choices_is_refused_before_anything_starts(flag, env, capsys):
    """Checked when read, as a flag or a variable, not by the model process after the server is up."""
    with pytest.raises(SystemExit):
        load_settings([flag, "fastest"], environ={})
    assert "invalid choice: 'fastest'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=f"{env}: expected one of .*, got 'fastest'"):
        load_settings([], environ={env: "fastest"})


def test_the_gpu_speed_choices_are_the_ones_the_device_side_knows():
    from pipelines.device.acceleration import SPEEDS

    choices = next(f.metadata["choices"] for f in dataclasses.fields(Settings) if f.name == "gpu_speed")
    assert choices == SPEEDS


def test_the_server_process_stays_free_of_torch_while_the_models_run_beside_it(tmp_path):
    """With the models in a process of their own (the default), the server never imports torch, diffusers
    or transformers: their memory (about 400 MB) and import time are the model process's alone."""
    script = (
        "import sys, app\n"
        "from settings import load_settings\n"
        f"settings, _ = load_settings(['--device', 'cpu', '--outputs', {str(tmp_path)!r}], environ={{}})\n"
        "studio = app.build_studio(settings)\n"
        "app.build_app(settings, studio)\n"
        "studio.residency()\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))\n"
        "studio.close()\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"

