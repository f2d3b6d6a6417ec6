"""Secure by default: no pickle ever runs, no path comes from a browser, file routes stay closed."""

import pickle
import shutil
from importlib import metadata

import httpx
import pytest
from packaging.version import Version

from pipelines import AtelierError, Txt2ImgRequest
from pipelines.front.registry import Registry
from tests.conftest import make_studio, tiny_registry


class Marker:
    """Unpickling this writes a file: the proof that a pickle ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def poisoned_copy(tiny_model_dir, tmp_path, how: str):
    folder = tmp_path / how
    shutil.copytree(tiny_model_dir, folder)
    marker = tmp_path / f"{how}.ran"
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    payload = pickle.dumps({"weight": Marker(marker)})
    if how == "bin":
        weights.unlink()
        (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(payload)
    elif how == "ckpt":
        weights.unlink()
        (folder / "unet" / "model.ckpt").write_bytes(payload)
    else:  # a pickle renamed .safetensors
        weights.write_bytes(payload)
    return folder, marker


@pytest.mark.parametrize("how", ["bin", "ckpt", "renamed"])
def test_pickle_checkpoints_are_refused_and_never_run(tiny_model_dir, tmp_path, how):
    folder, marker = poisoned_copy(tiny_model_dir, tmp_path, how)
    studio = make_studio(tiny_registry(folder))
    job = studio.txt2img(Txt2ImgRequest(model="tiny", prompt="x", steps=1, width=64, height=64))
    with pytest.raises(AtelierError, match="could not be loaded"):
        job.result()
    assert not marker.exists()
    assert studio.runner.manager.resident() == []


def test_a_local_folder_registers_by_path_and_generates(tiny_model_dir):
    registry = Registry.with_folders({"mine": str(tiny_model_dir)})
    studio = make_studio(registry)
    result = studio.txt2img(Txt2ImgRequest(model="mine", prompt="x", steps=2, width=256, height=256, seed=1)).result()
    assert result.recipes[0].model == "mine" and result.images[0].size == (256, 256)


def test_a_folder_that_is_not_a_diffusers_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="model_index.json"):
        Registry.with_folders({"x": str(tmp_path)})


def test_an_unavailable_hub_model_says_how_to_fetch_it():
    studio = make_studio()
    studio.runner.manager.offline = True
    job = studio.txt2img(Txt2ImgRequest(model="sd15", prompt="x", steps=1, width=512, height=512))
    with pytest.raises(AtelierError) as e:
        job.result()
    assert "Stable Diffusion 1.5" in str(e.value) and "hf download stable-diffusion-v1-5/stable-diffusion-v1-5" in str(e.value)
    assert studio.runner.manager.resident() == []
    ok = studio.txt2img(Txt2ImgRequest(model="shapes", prompt="a red circle", steps=2, width=64, height=64)).result()
    assert ok.images  # the app keeps working with what it has


FLOORS = {"gradio": "6.31", "pillow": "11.3", "torch": "2.6", "transformers": "5.6", "diffusers": "0.42"}


def test_installed_versions_meet_the_advisory_floors():
    requirements = open("requirements.txt").read().lower()
    for name, floor in FLOORS.items():
        assert f"{name}>={floor}" in requirements, name
        installed = Version(metadata.version(name).split("+")[0])
        assert installed >= Version(floor), (name, installed)


@pytest.mark.parametrize(
    "path",
    [
        "gradio_api/file=../../../../etc/passwd",
        "gradio_api/file=..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "gradio_api/file=/etc/passwd",
        "gradio_api/file=assets/shapes-model/unet/config.json",
        "gradio_api/file=app.py",
        "gradio_api/file=.env",
        "gradio_api/file=%2Fproc%2Fself%2Fenviron",
        "file=/etc/passwd",
        "gradio_api/file=outputs/",
    ],
)
def test_file_routes_refuse_traversal(app_url, path):
    response = httpx.get(app_url + path, follow_redirects=False)
    assert response.status_code in (403, 404, 400, 405), (path, response.status_code)
    assert "root:" not in response.text


def test_an_image_url_is_never_fetched(client):
    """A URL where an image belongs is not downloaded by the server (no SSRF)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(3)
    port = listener.getsockname()[1]
    hits = []

    def accept():
        try:
            conn, _ = listener.accept()
            hits.append(conn.recv(100))
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    with pytest.raises(Exception):
        client.predict(image=f"http://127.0.0.1:{port}/x.png", prompt="", api_name="/variations")
    thread.join()
    listener.close()
    assert hits == []
