"""AUTOMATIC1111's `/sdapi/v1` and the MCP server, driven by clients no one here wrote: the `webuiapi`
package, Open WebUI's and SillyTavern's call sequences replayed as their sources make them, and the `mcp`
package's client. Everything runs against `python app.py` in its own process, signed in as the page is."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from pipelines import read_recipe
from pipelines.front.credentials import read as read_credentials
from tests.conftest import TINY, app_process

webuiapi = pytest.importorskip("webuiapi")

AUTH = ("ann", "secret1")
PROMPT = "a small red circle at the top left on a white background"


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    """`python app.py` with two accounts, an outputs folder and a second (tiny) model: (url, outputs)."""
    outputs = tmp_path_factory.mktemp("outputs")
    flags = ["--outputs", str(outputs), "--auth", "ann:secret1,bob:secret2", "--model-dirs", f"{TINY}={tiny_model_dir}"]
    with app_process(flags, tmp_path_factory.mktemp("app") / "app.log") as url:
        yield url, outputs


@pytest.fixture(scope="module")
def api(server):
    url, _ = server
    host, port = url.removeprefix("http://").strip("/").split(":")
    return webuiapi.WebUIApi(host=host, port=int(port), username=AUTH[0], password=AUTH[1])


def sdapi(server, route: str) -> str:
    return f"{server[0]}sdapi/v1/{route}"


def decoded(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


def page_client(server, auth):
    from gradio_client import Client

    return Client(server[0], auth=auth, verbose=False)


def library_ids(outputs: Path, user: str) -> set[str]:
    """The image ids of every PNG in a person's part of the outputs folder (what the Library indexes)."""
    return {read_recipe(str(p)).image_id for p in (outputs / "users" / user).rglob("*.png")}


# -- webuiapi ---------------------------------------------------------------------------------------------


def test_txt2img_seeds_batches_infotexts_and_library(api, server):
    result = api.txt2img(prompt=PROMPT, seed=7, batch_size=2, n_iter=2, width=64, height=64, steps=8)
    assert len(result.images) == 4 and all(i.size == (64, 64) for i in result.images)
    assert result.info["all_seeds"] == [7, 8, 9, 10] and result.info["seed"] == 7
    assert result.info["sd_model_name"] == "shapes" and result.info["steps"] == 8
    assert "Seed: 9" in result.info["infotexts"][2] and result.info["infotexts"][0].startswith(PROMPT)
    assert result.images[0].info["parameters"] == result.info["infotexts"][0]  # the PNG carries its recipe
    # Image 2 is seed 9 alone: the same pixels when asked for by itself.
    again = api.txt2img(prompt=PROMPT, seed=9, width=64, height=64, steps=8)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(result.images[2]))
    # Every image is in ann's Library with its recipe, found by the page's own search; none in bob's.
    assert set(result.info["image_ids"]) <= library_ids(server[1], "ann")
    found = page_client(server, AUTH).predict(query="red circle", api_name="/library_search")
    assert set(result.info["image_ids"]) <= {row["image_id"] for row in found}
    assert not page_client(server, ("bob", "secret2")).predict(query="red circle", api_name="/library_search")


def test_random_seed_is_drawn_and_reported(api):
    result = api.txt2img(prompt=PROMPT, seed=-1, batch_size=2, width=64, height=64, steps=4)
    first = result.info["seed"]
    assert first >= 0 and result.info["all_seeds"] == [first, first + 1]


def test_img2img_with_mask_keeps_every_pixel_outside_it_and_records_the_parent(api, server):
    parent = api.txt2img(prompt=PROMPT, seed=3, width=64, height=64, steps=8)
    init = parent.images[0]
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (20, 20, 44, 44))
    result = api.img2img(images=[init], mask_image=mask, prompt="a blue square", seed=4, mask_blur=2,
                         denoising_strength=0.9, inpainting_fill=1, width=64, height=64, steps=10)
    out = np.asarray(result.images[0].convert("RGB"))
    before = np.asarray(init.convert("RGB"))
    outside = np.ones((64, 64), bool)
    outside[16:48, 16:48] = False  # the mask grown by more than its blur
    assert np.array_equal(out[outside], before[outside])
    assert not np.array_equal(out[24:40, 24:40], before[24:40, 24:40])
    recipe = read_recipe(result.images[0])
    assert recipe.task == "inpaint" and recipe.parent == parent.info["image_ids"][0]
    chain = page_client(server, AUTH).predict(image_id=recipe.image_id, api_name="/lineage")
    assert [step["image_id"] for step in chain] == [parent.info["image_ids"][0], recipe.image_id]
    assert recipe.settings["strength"] == 0.9 and recipe.settings["mask_blur"] == 2


def test_img2img_without_a_mask_draws_over_the_picture(api):
    drawing = Image.new("RGB", (64, 64), (255, 255, 255))
    drawing.paste((30, 80, 230), (8, 8, 30, 30))
    result = api.img2img(images=[drawing], prompt="a blue triangle on a white background", seed=2,
                         denoising_strength=0.6, width=64, height=64, steps=10)
    recipe = read_recipe(result.images[0])
    assert recipe.task == "sketch" and recipe.settings["strength"] == 0.6 and recipe.parent is None


def test_png_info_reads_the_settings_back(api):
    made = api.txt2img(prompt=PROMPT, seed=11, width=64, height=64, steps=4).images[0]
    info = api.png_info(made)
    assert "Seed: 11" in info.info
    assert info.parameters["Seed"] == "11" and info.parameters["Prompt"] == PROMPT
    assert info.parameters["Size-1"] == "64"


def test_models_samplers_and_switching_the_model(api):
    assert {"shapes", TINY} <= set(api.util_get_model_names())
    assert "Euler a" in api.util_get_sampler_names()
    api.util_set_model(TINY)
    try:
        assert api.util_get_current_model() == TINY
        result = api.txt2img(prompt="a picture", seed=1, width=256, height=256, steps=2)  # its smallest size
        assert result.info["sd_model_name"] == TINY
    finally:
        api.util_set_model("shapes")
    assert api.util_get_current_model() == "shapes"


def test_progress_during_a_job_then_interrupt(api):
    done = {}
    worker = threading.Thread(target=lambda: done.setdefault("result", api.txt2img(
        prompt=PROMPT, seed=5, width=64, height=64, steps=150, n_iter=3)))
    worker.start()
    seen, deadline = None, time.monotonic() + 60
    while time.monotonic() < deadline:
        progress = api.get_progress()
        if progress["progress"] > 0 and progress["current_image"] and progress["state"]["sampling_step"] > 0:
            seen = progress
            break
        time.sleep(0.2)
    assert seen is not None, "no progress with a preview was reported during the job"
    assert seen["state"]["job_count"] == 3 and decoded(seen["current_image"]).size[0] > 0
    started = time.monotonic()
    assert api.interrupt() == {}
    worker.join(60)
    assert not worker.is_alive() and time.monotonic() - started < 30
    assert len(done["result"].images) < 3  # the rest of the iterations never ran
    assert api.get_progress()["state"]["job_count"] == 0


# -- other people's tools, replayed -----------------------------------------------------------------------


def test_open_webui_sequence(server):
    """Open WebUI's "Automatic1111" engine (backend/open_webui/routers/images.py): verify the address
    with options, list sd-models, set the model by posting the whole options back, then txt2img."""
    session = requests.Session()
    session.auth = AUTH
    assert session.get(sdapi(server, "options")).ok
    models = [{"id": m["title"], "name": m["model_name"]} for m in session.get(sdapi(server, "sd-models")).json()]
    assert "shapes" in [m["id"] for m in models]
    options = session.get(sdapi(server, "options")).json()
    options["sd_model_checkpoint"] = "shapes"
    assert session.post(sdapi(server, "options"), json=options).ok
    body = {"prompt": PROMPT, "batch_size": 2, "width": 64, "height": 64, "steps": 6, "negative_prompt": "blue"}
    answer = session.post(sdapi(server, "txt2img"), json=body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["images"]) == 2
    assert json.loads(answer.json()["info"])["negative_prompt"] == "blue"
    # What the API sends is the file the Library keeps: signed with Content Credentials, recipe inside.
    sent = base64.b64decode(answer.json()["images"][0])
    credentials = read_credentials(sent)
    assert credentials["valid"] and credentials["ai_generated"]
    assert read_recipe(sent).negative_prompt == "blue"


def test_sillytavern_sequence(server):
    """SillyTavern's stable-diffusion endpoints (src/endpoints/stable-diffusion.js): ping, upscalers,
    latent modes, VAEs, samplers, schedulers, models, set the model and wait for idle, generate, interrupt."""
    session = requests.Session()
    session.auth = AUTH
    assert session.get(sdapi(server, "options")).ok
    upscalers = [x["name"] for x in session.get(sdapi(server, "upscalers")).json()]
    latent = [x["name"] for x in session.get(sdapi(server, "latent-upscale-modes")).json()]
    assert upscalers[0] == "None" and isinstance(latent, list)
    assert isinstance(session.get(sdapi(server, "sd-vae")).json(), list)
    assert "Euler a" in [x["name"] for x in session.get(sdapi(server, "samplers")).json()]
    assert "automatic" in [x["name"] for x in session.get(sdapi(server, "schedulers")).json()]
    titles = [x["title"] for x in session.get(sdapi(server, "sd-models")).json()]
    assert session.post(sdapi(server, "options"), json={"sd_model_checkpoint": titles[0]}).ok
    for _ in range(10):
        state = session.get(sdapi(server, "progress")).json()
        if state["progress"] == 0.0 and state["state"]["job_count"] == 0:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the server never said it was idle")
    assert "forge_preset" not in session.get(sdapi(server, "options")).json()
    body = {  # what its extension sends (url and auth included: the proxy forwards its own body)
        "url": server[0], "auth": "ann:secret1", "prompt": PROMPT, "negative_prompt": "", "sampler_name": "Euler a",
        "scheduler": "automatic", "steps": 6, "cfg_scale": 5, "width": 64, "height": 64, "restore_faces": False,
        "enable_hr": False, "hr_upscaler": "None", "hr_scale": 2, "hr_additional_modules": [],
        "denoising_strength": 0.7, "hr_second_pass_steps": 0, "seed": -1, "clip_skip": 1,
        "override_settings": {"CLIP_stop_at_last_layers": 1, "sd_vae": "Automatic"},
        "override_settings_restore_afterwards": True, "save_images": True, "send_images": True,
        "do_not_save_grid": False, "do_not_save_samples": False,
    }
    answer = session.post(sdapi(server, "txt2img"), json=body)
    assert answer.status_code == 200, answer.text
    assert decoded(answer.json()["images"][0]).size == (64, 64)
    assert any("override_settings" in n for n in json.loads(answer.json()["info"])["notices"])
    assert session.post(sdapi(server, "interrupt")).json() == {}


# -- hostile bodies -----------------------------------------------------------------------------------------


def png_text(colour: int = 0) -> str:
    buffer = io.BytesIO()
    Image.new("L", (64, 64), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


HOSTILE = [
    ("txt2img", b"{not json", 422),
    ("txt2img", [1, 2], 422),
    ("txt2img", {"prompt": "x", "steps": "many"}, 422),
    ("txt2img", {"prompt": "x", "steps": 20.5}, 422),
    ("txt2img", {"prompt": "x", "cfg_scale": 1e308}, 400),
    ("txt2img", {"prompt": "x", "width": 100000, "height": 64}, 400),
    ("txt2img", {"prompt": "x", "seed": 2**80}, 400),
    ("txt2img", {"prompt": "x" * 10000}, 400),
    ("txt2img", {"prompt": "x", "n_iter": 10**6}, 400),
    ("txt2img", {"prompt": "x", "batch_size": 10**6}, 400),
    ("txt2img", {"prompt": "x", "sampler_name": "Nope"}, 400),
    ("txt2img", {"prompt": "x", "styles": ["no such style"]}, 400),
    ("txt2img", {"prompt": "x", "override_settings": {"sd_model_checkpoint": "../../etc/passwd"}}, 400),
    ("txt2img", {"prompt": ""}, 400),
    ("img2img", {"prompt": "x"}, 404),
    ("img2img", {"prompt": "x", "init_images": ["%%%not base64"]}, 400),
    ("img2img", {"prompt": "x", "init_images": ["data:image/png;base64,aGVsbG8="]}, 400),
    ("img2img", {"prompt": "x", "init_images": ["http://127.0.0.1/secret.png"]}, 400),
    ("img2img", {"prompt": "x", "init_images": [png_text(255)], "mask": png_text(0)}, 400),
    ("img2img", {"prompt": "x", "init_images": [png_text(255)], "mask": png_text(255), "denoising_strength": 7}, 400),
    ("png-info", {"image": "@@@"}, 400),
    ("options", {"sd_model_checkpoint": "nope"}, 400),
]


@pytest.mark.parametrize("route,body,status", HOSTILE, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(HOSTILE)])
def test_hostile_bodies_are_refused_with_a_sentence(server, route, body, status):
    data = body if isinstance(body, bytes) else json.dumps(body)
    answer = requests.post(sdapi(server, route), data=data, auth=AUTH, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert detail and "Traceback" not in answer.text
    if status == 400:  # named by the client's own field
        assert isinstance(detail, str) and ":" in detail


def test_a_huge_body_is_refused_unread_and_the_server_keeps_serving(server):
    import http.client

    host, port = server[0].removeprefix("http://").strip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/sdapi/v1/txt2img")
    for name, value in (("Content-Type", "application/json"), ("Content-Length", str(2**40)),
                        ("Authorization", "Basic " + base64.b64encode(b"ann:secret1").decode())):
        connection.putheader(name, value)
    connection.endheaders(b"{")  # a terabyte announced, one byte sent
    answer = connection.getresponse()
    assert answer.status == 413 and "larger than" in json.loads(answer.read())["detail"]
    connection.close()
    fine = requests.post(sdapi(server, "txt2img"), auth=AUTH,
                         json={"prompt": PROMPT, "width": 64, "height": 64, "steps": 2, "seed": 1})
    assert fine.status_code == 200 and len(fine.json()["images"]) == 1


def test_the_api_asks_for_the_pages_accounts(server):
    assert requests.get(sdapi(server, "options")).status_code == 401
    assert requests.get(sdapi(server, "options"), auth=("ann", "wrong")).status_code == 401
    assert requests.get(sdapi(server, "options"), auth=("bob", "secret2")).ok


# -- MCP ----------------------------------------------------------------------------------------------------


def test_an_mcp_client_lists_the_tools_and_makes_a_picture(tmp_path_factory):
    mcp = pytest.importorskip("mcp")
    from mcp.client.streamable_http import streamablehttp_client

    outputs = tmp_path_factory.mktemp("mcp-outputs")

    async def session(url: str):
        async with streamablehttp_client(f"{url}gradio_api/mcp/") as (read, write, _), \
                mcp.ClientSession(read, write) as client:
            await client.initialize()
            tools = {t.name: t for t in (await client.list_tools()).tools}
            made = await client.call_tool("text_to_image", {"prompt": PROMPT, "seed": 12})
            return tools, made

    with app_process(["--outputs", str(outputs), "--mcp"], tmp_path_factory.mktemp("mcp") / "app.log") as url:
        tools, made = asyncio.run(session(url))
    assert {"text_to_image", "library_search"} <= set(tools)
    assert not any(name.startswith("run") for name in tools), sorted(tools)  # tasks' tools are named after them
    assert "seed" in json.dumps(tools["text_to_image"].inputSchema)
    assert "Library" in tools["text_to_image"].description
    images = [c for c in made.content if c.type == "image"]
    assert not made.isError and images and images[0].mimeType == "image/png"
    # The model's own defaults, as on the page: the embedded model's picture goes on through its ×4 stage.
    assert decoded(images[0].data).size == (256, 256)
    saved = [read_recipe(str(p)) for p in outputs.rglob("*.png")]
    assert [(r.seed, r.prompt, r.settings.get("hires")) for r in saved] == [(12, PROMPT, True)]
