"""The app as a service: launched in-process on a free port and driven over HTTP with gradio_client."""

import json

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines import TASKS
from pipelines.front.recipe import read_recipe

# Every registered task is an endpoint, the Library's search, lineage and credentials too, and nothing else is.
PUBLIC = {f"/{name}" for name in TASKS.names} | {"/library_search", "/lineage", "/credentials"}
T2I = dict(prompt="a large blue triangle on a white background", negative_prompt="", seed=5, steps=12,
           guidance_scale=5, width=64, height=64, num_images=1, scheduler="Euler a", model="shapes")


def txt2img(client, **kw):
    return client.predict(**{**T2I, **kw}, api_name="/txt2img")


def test_api_lists_exactly_the_public_endpoints(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(named) == PUBLIC
    params = [p["parameter_name"] for p in named["/txt2img"]["parameters"]]
    assert params[:10] == ["prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height",
                           "num_images", "scheduler", "model"]


def test_every_endpoints_parameters_are_its_requests_fields(client):
    """Wired by name: each parameter is a field of the task's request, with the same meaning everywhere."""
    import dataclasses

    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for task in TASKS:
        params = {p["parameter_name"] for p in named[f"/{task.name}"]["parameters"]}
        fields = {f.name for f in dataclasses.fields(task.request)}
        assert params <= fields and {"prompt", "seed", "steps", "scheduler", "model"} <= params, (task.name, params - fields)


def test_image_endpoints_take_the_parent_id_into_the_recipes(client, tmp_path):
    _, made = txt2img(client, steps=2)
    Image.new("RGB", (64, 64), (40, 90, 200)).save(tmp_path / "in.png")
    _, recipes = client.predict(image=handle_file(str(tmp_path / "in.png")), seed=1, num_images=1, steps=4,
                                parent=made[0]["image_id"], api_name="/variations")
    assert recipes[0]["parent"] == made[0]["image_id"]


def test_outpaint_takes_the_scheduler_images_fill_and_colour_settings(client, tmp_path):
    Image.new("RGB", (48, 48), (30, 170, 60)).save(tmp_path / "in.png")
    gallery, recipes = client.predict(image=handle_file(str(tmp_path / "in.png")), prompt="a white background", top=16,
                                      scheduler="Euler", num_images=2, fill="noise", color_correction=False, steps=6,
                                      api_name="/outpaint")
    assert len(gallery) == 2 and {r["scheduler"] for r in recipes} == {"Euler"}
    settings = recipes[0]["settings"]
    assert (settings["fill"], settings["color_correction"], settings["top"]) == ("noise", False, 16)


def test_txt2img_returns_a_png_with_its_recipe_and_repeats_exactly(client):
    gallery, recipes = txt2img(client)
    path = gallery[0]["image"]
    image = Image.open(path)
    assert image.format == "PNG"
    recipe = read_recipe(path)
    assert recipe.seed == 5 and recipe.prompt == T2I["prompt"] and recipe.model == "shapes"
    assert recipes[0]["image_id"] == recipe.image_id
    again, _ = txt2img(client)
    assert (np.asarray(Image.open(again[0]["image"])) == np.asarray(image)).all()


@pytest.mark.parametrize(
    "field,value",
    [("steps", 0), ("steps", 10**6), ("steps", 20.5), ("seed", -2), ("seed", 2**64), ("width", 100),
     ("width", 10**5), ("num_images", 0), ("num_images", 10**4), ("scheduler", "Heun++"),
     ("model", "../x.ckpt"), ("model", "http://127.0.0.1:9/x.safetensors"), ("steps", "twenty"),
     ("guidance_scale", None), ("prompt", ["a", "list"]), ("negative_prompt", 7)],
)
def test_bad_parameters_are_refused_by_name_and_the_next_request_works(client, field, value):
    with pytest.raises(Exception) as e:
        txt2img(client, **{field: value})
    message = str(e.value)
    assert field in message, message
    assert "Traceback" not in message
    gallery, _ = txt2img(client, steps=2)
    assert gallery


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_sent_as_raw_json_are_refused(app_url, literal):
    """JSON clients cannot send NaN; a hand-written request can. It is refused with the field named."""
    import httpx

    values = [T2I[k] for k in ("prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height",
                               "num_images", "scheduler", "model")] + [0.0, {"headers": ["LoRA", "weight"], "data": []}, [], False, 4, 0.06, 8, 1, ""]
    # (rescale, LoRAs, styles, the four hires settings, feature reuse, parent)
    body = json.dumps({"data": values}).replace(f"{T2I['guidance_scale']}, 64", f"{literal}, 64", 1)
    assert literal in body
    post = httpx.post(app_url + "gradio_api/call/txt2img", content=body, headers={"content-type": "application/json"})
    assert post.status_code == 200, post.text  # accepted as JSON, then refused by the request's own check
    event_id = post.json()["event_id"]
    stream = httpx.get(app_url + f"gradio_api/call/txt2img/{event_id}", timeout=60).text
    assert "event: error" in stream and "guidance_scale: expected a finite number" in stream, stream


def test_variations_inpaint_outpaint_and_morph_over_http(client, tmp_path):
    source = Image.new("RGB", (64, 64), (255, 255, 255))
    source.paste((35, 80, 230), (16, 16, 48, 48))
    source.save(tmp_path / "in.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (20, 20, 44, 44))
    mask.save(tmp_path / "mask.png")

    gallery, recipes = client.predict(image=handle_file(str(tmp_path / "in.png")), prompt="", seed=1, num_images=2,
                                      similarity=0.8, mode="image", api_name="/variations")
    assert len(gallery) == 2 and recipes[0]["task"] == "variations"

    gallery, recipes = client.predict(image=handle_file(str(tmp_path / "in.png")), mask=handle_file(str(tmp_path / "mask.png")),
                                      prompt="a red circle", seed=2, api_name="/inpaint")
    out = np.asarray(Image.open(gallery[0]["image"]).convert("RGB"))
    assert (out[:10] == np.asarray(source)[:10]).all() and recipes[0]["settings"]["seam"] is not None

    gallery, _ = client.predict(image=handle_file(str(tmp_path / "in.png")), prompt="a white background", left=16,
                                api_name="/outpaint")
    out = np.asarray(Image.open(gallery[0]["image"]).convert("RGB"))
    assert out.shape[:2] == (64, 80) and (out[:, 16:] == np.asarray(source)).all()

    frames, video, files, recipes = client.predict(prompt="a red circle", prompt_b="a blue circle", num_frames=3,
                                                   seed=1, seed_b=-1, steps=8, guidance_scale=5, even_pacing=False,
                                                   api_name="/morph")
    assert len(frames) == 3 and [r["settings"]["position"] for r in recipes] == [0, 0.5, 1]
    assert sorted(f.rsplit(".", 1)[-1] for f in files) == ["gif", "mp4"]


@pytest.mark.parametrize(
    "endpoint,field,value",
    [("/variations", "similarity", 5), ("/variations", "mode", "sideways"), ("/variations", "num_images", 10**4),
     ("/inpaint", "strength", -1), ("/inpaint", "padding", 10**6), ("/outpaint", "left", 10**6),
     ("/outpaint", "steps", 0), ("/morph", "num_frames", 10**4), ("/morph", "fps", 0), ("/morph", "depth", 2)],
)
def test_every_endpoint_refuses_bad_parameters_by_name(client, tmp_path, endpoint, field, value):
    Image.new("RGB", (64, 64), (200, 40, 40)).save(tmp_path / "in.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask.save(tmp_path / "mask.png")
    image = handle_file(str(tmp_path / "in.png"))
    base = {
        "/variations": dict(image=image, prompt="", seed=1),
        "/inpaint": dict(image=image, mask=handle_file(str(tmp_path / "mask.png")), prompt="a red circle", seed=1),
        "/outpaint": dict(image=image, prompt="a white background", left=8, seed=1),
        "/morph": dict(prompt="a red circle", prompt_b="a blue circle", num_frames=3, seed=1, steps=4),
    }[endpoint]
    with pytest.raises(Exception) as e:
        client.predict(**{**base, field: value}, api_name=endpoint)
    assert field in str(e.value), str(e.value)


def test_bad_uploads_get_a_clear_message_and_the_next_request_works(client, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not a picture at all" * 10)
    for bad, message in ((empty, "empty"), (junk, "not an image")):
        with pytest.raises(Exception, match=message):
            client.predict(image=handle_file(str(bad)), prompt="", seed=1, num_images=1, similarity=0.5,
                           mode="image", api_name="/variations")
    assert txt2img(client, steps=2)[0]


@pytest.mark.parametrize(
    "prompt,kept",
    [("<script>alert(1)</script>", "<script>alert(1)</script>"),  # data, shown as text by the JSON view
     ("👩‍👩‍👧 مرحبا", "👩‍👩‍👧 مرحبا"), ("a\x00b", "ab")],
)
def test_hostile_prompts_come_back_as_plain_text_quickly(client, prompt, kept):
    import time

    start = time.perf_counter()
    _, recipes = txt2img(client, prompt=prompt, steps=1)
    assert recipes[0]["prompt"] == kept
    assert time.perf_counter() - start < 10


def test_an_overlong_prompt_is_refused_by_name_quickly(client):
    import time

    start = time.perf_counter()
    with pytest.raises(Exception, match="prompt: 10000 characters; at most 2000 are accepted"):
        txt2img(client, prompt="x" * 10**4, steps=1)
    assert time.perf_counter() - start < 10


def test_a_client_that_goes_away_leaves_no_work_behind(client, app_url):
    """Cancel (what a closed tab does) ends the job: the next request is served at once, not after the
    abandoned one (8 images × 150 steps, over 20 s here), and nothing of the abandoned one is kept."""
    import time

    from gradio_client import Client

    other = Client(app_url, verbose=False)
    abandoned = other.submit(**{**T2I, "prompt": "an abandoned octagon", "steps": 150, "num_images": 8},
                             api_name="/txt2img")
    started = time.monotonic()  # cancelled while it runs, not while it waits in the queue
    while abandoned.status().code.name != "PROGRESS" and time.monotonic() - started < 30:
        time.sleep(0.05)
    assert abandoned.status().code.name == "PROGRESS"
    abandoned.cancel()
    start = time.perf_counter()
    gallery, _ = txt2img(client, steps=2)
    assert gallery and time.perf_counter() - start < 10
    assert not other.predict(query="abandoned octagon", api_name="/library_search")


def test_txt2img_takes_a_parent_too(client):
    _, made = txt2img(client, steps=2, seed=31)
    _, recipes = txt2img(client, steps=2, parent=made[0]["image_id"])
    assert recipes[0]["parent"] == made[0]["image_id"]


@pytest.mark.parametrize("parent", ["../../etc/passwd", "fedcba9876543210"])
def test_a_parent_that_is_none_of_the_callers_images_is_refused(client, parent):
    """The lineage the Library shows is read from `parent`: a made-up id is refused, never stored."""
    with pytest.raises(Exception, match="parent: .* is not the id of one of your images"):
        txt2img(client, steps=2, parent=parent)
    assert not client.predict(query="passwd", api_name="/library_search")


@pytest.mark.parametrize("paging,refused", [({"limit": -1}, "limit: -1 is out of range 1–500"),
                                            ({"limit": 0}, "limit: 0 is out of range"),
                                            ({"limit": 10_000}, "limit: 10000 is out of range"),
                                            ({"offset": -10}, "offset: -10 is out of range")])
def test_library_search_pages_out_of_range_are_refused_with_a_sentence(client, paging, refused):
    with pytest.raises(Exception, match=refused):
        client.predict(query="", **paging, api_name="/library_search")


def test_a_mask_of_the_images_shape_at_another_size_is_scaled_with_a_notice_another_shape_refused(client, tmp_path):
    """A 32×32 mask for a 64×64 image still says where to paint (scaled, and the person told); a 32×48 one
    was drawn for another picture, and no scaling makes it line up."""
    Image.new("RGB", (64, 64), (200, 200, 200)).save(tmp_path / "in.png")
    for size in ((32, 32), (32, 48)):
        mask = Image.new("L", size, 0)
        mask.paste(255, (0, 0, 16, 16))
        mask.save(tmp_path / f"mask{size[1]}.png")
    job = client.submit(image=handle_file(str(tmp_path / "in.png")), mask=handle_file(str(tmp_path / "mask32.png")),
                        prompt="a red circle", seed=1, steps=2, num_images=1, api_name="/inpaint")
    _, recipes = job.result()
    assert "The mask (32×32) was scaled to the image's 64×64." in recipes[0]["notices"]
    with pytest.raises(Exception, match="mask: 32×48 is not the shape of the image"):
        client.predict(image=handle_file(str(tmp_path / "in.png")), mask=handle_file(str(tmp_path / "mask48.png")),
                       prompt="a red circle", seed=1, steps=2, num_images=1, api_name="/inpaint")


def test_the_lineage_of_txt2img_variation_inpaint_over_http(client, tmp_path):
    """Scripted work with `parent` has lineage: found by a word of its prompt, traced back to its root."""
    gallery, made = txt2img(client, prompt="a large green square on a white background", seed=11, steps=4)
    _, varied = client.predict(image=handle_file(gallery[0]["image"]), seed=2, num_images=1, similarity=0.8, steps=4,
                               parent=made[0]["image_id"], api_name="/variations")
    Image.open(gallery[0]["image"]).save(tmp_path / "v.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (8, 8, 32, 32))
    mask.save(tmp_path / "mask.png")
    _, painted = client.predict(image=handle_file(str(tmp_path / "v.png")), mask=handle_file(str(tmp_path / "mask.png")),
                                prompt="a zigzag of magenta", seed=3, steps=4, num_images=1, parent=varied[0]["image_id"],
                                api_name="/inpaint")
    found = client.predict(query="zigzag", api_name="/library_search")
    assert [row["image_id"] for row in found] == [painted[0]["image_id"]]
    assert {"image_id", "prompt", "task", "model", "created", "parent"} <= found[0].keys()
    assert "path" not in found[0] and "user" not in found[0]  # the server's folders are its own business
    chain = client.predict(image_id=painted[0]["image_id"], api_name="/lineage")
    assert [(step["task"], step["image_id"]) for step in chain] == [
        ("txt2img", made[0]["image_id"]), ("variations", varied[0]["image_id"]), ("inpaint", painted[0]["image_id"])]
    assert [step["parent"] for step in chain] == [None, made[0]["image_id"], varied[0]["image_id"]]
    # Each sent 256² (Hires is the embedded model's default) and brought back through its stage: the variation
    # whole (×4), the repaint's 128² area (its 96² mask and context) from the model's 64² (×2).
    assert chain[1]["label"] == "variation, upscaled ×4 · similarity 0.8" and chain[1]["settings"]["similarity"] == 0.8
    assert chain[2]["label"] == "inpaint, upscaled ×2 · a zigzag of magenta"


def test_library_search_takes_filters_and_pages_and_reads_any_text_as_words(client):
    txt2img(client, prompt="a small yellow circle on a black background", seed=21, steps=2)
    txt2img(client, prompt="a small yellow circle on a black background", seed=22, steps=2)
    rows = client.predict(query="yellow", task="txt2img", model="shapes", limit=1, api_name="/library_search")
    older = client.predict(query="yellow", limit=1, offset=1, api_name="/library_search")
    assert len(rows) == len(older) == 1 and rows[0]["image_id"] != older[0]["image_id"]
    assert rows[0]["created"] >= older[0]["created"]  # newest first
    assert client.predict(query="yellow", favourites_only=True, api_name="/library_search") == []
    assert client.predict(query="yellow", task="morph", api_name="/library_search") == []
    for hostile in ('"', "NEAR(", "'; DROP TABLE images; --", "yellow AND -", "*"):
        assert isinstance(client.predict(query=hostile, api_name="/library_search"), list)
    assert client.predict(query="yellow", api_name="/library_search")  # the index is whole


def test_an_unknown_image_id_is_not_found(client):
    for unknown in ("0000000000000000", "../../etc/passwd", ""):
        with pytest.raises(Exception, match="not found"):
            client.predict(image_id=unknown, api_name="/lineage")


@pytest.fixture(scope="module")
def two_people(tmp_path_factory):
    """`python app.py` with two accounts: each person's client, signed in, the outputs and the server's log."""
    from gradio_client import Client

    from tests.conftest import app_process

    outputs = tmp_path_factory.mktemp("shared-outputs")
    log = tmp_path_factory.mktemp("two-people") / "app.log"
    with app_process(["--outputs", str(outputs), "--auth", "ann:secret1,bob:secret2"], log) as url:
        people = (Client(url, auth=(name, password), verbose=False) for name, password in (("ann", "secret1"),
                                                                                          ("bob", "secret2")))
        yield *people, outputs, log


def test_each_person_sees_only_their_own_images_and_anothers_id_is_not_found(two_people):
    ann, bob, outputs, _ = two_people
    _, recipes = txt2img(ann, prompt="a large red triangle on a white background", steps=2)
    mine = recipes[0]["image_id"]
    assert [row["image_id"] for row in ann.predict(query="triangle", api_name="/library_search")] == [mine]
    assert ann.predict(image_id=mine, api_name="/lineage")[0]["image_id"] == mine
    assert bob.predict(query="triangle", api_name="/library_search") == []
    assert bob.predict(api_name="/library_search") == []
    with pytest.raises(Exception, match="not found"):
        bob.predict(image_id=mine, api_name="/lineage")
    with pytest.raises(Exception, match="parent: .* is not the id of one of your images"):
        txt2img(bob, prompt="a large red triangle on a white background", steps=2, parent=mine)  # ann's image
    _, theirs = txt2img(bob, prompt="a large red triangle on a white background", steps=2)
    assert len(bob.predict(image_id=theirs[0]["image_id"], api_name="/lineage")) == 1
    assert list((outputs / "users" / "ann").rglob("*.png")) and list((outputs / "users" / "bob").rglob("*.png"))


def test_ordinary_refusals_print_no_traceback_in_the_servers_log(two_people):
    """A refused value is the sender's slip, told to them in a sentence: the log stays for real faults."""
    ann, _, _, log = two_people
    refusals = [
        lambda: txt2img(ann, steps=0),
        lambda: txt2img(ann, steps=2, parent="../../etc/passwd"),
        lambda: ann.predict(limit=-1, api_name="/library_search"),
        lambda: ann.predict(image_id="0000000000000000", api_name="/lineage"),
    ]
    for refuse in refusals:
        with pytest.raises(AppError):
            refuse()
    txt2img(ann, steps=2)  # the server is fine, and its log is written
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def test_every_error_the_page_raises_prints_no_traceback():
    """gr.Error prints its traceback unless told not to; every one the page raises is a refusal."""
    import ast
    from pathlib import Path

    for path in (Path(__file__).resolve().parent.parent / "ui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "gr.Error":
                quiet = {k.arg: ast.unparse(k.value) for k in node.keywords}.get("print_exception")
                assert quiet == "False", f"{path.name}:{node.lineno}"


@pytest.mark.timeout(180)  # a start line that never comes must fail, not block the suite
@pytest.mark.parametrize("when", ["Outputs:", "Atelier is running at", "mid-run"])
def test_sigterm_closes_the_app_as_ctrl_c_does(tmp_path, when):
    """Service managers (systemd, Kubernetes) stop the app with SIGTERM: it closes and exits 0, also
    while the server is still starting (before gradio's own Ctrl+C handling is in place), and within
    seconds while a long job runs (the job stops at its next step; it used to run to its end first)."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    from gradio_client import Client

    root = Path(__file__).resolve().parent.parent
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = subprocess.Popen(
        [sys.executable, "app.py", "--no-open-browser", "--port", str(port), "--outputs", str(tmp_path)],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    printed = []
    deadline = time.monotonic() + 60
    while not any(when.replace("mid-run", "Atelier is running at") in line for line in printed):
        assert time.monotonic() < deadline and app.poll() is None, printed
        printed.append(app.stdout.readline())
    if when == "mid-run":  # 150 steps of 8 images: minutes of work
        job = Client(f"http://127.0.0.1:{port}/", verbose=False).submit(
            **{**T2I, "steps": 150, "num_images": 8}, api_name="/txt2img")
        while not (job.status().progress_data or []):
            assert time.monotonic() < deadline, job.status()
            time.sleep(0.2)
    stopped = time.monotonic()
    app.send_signal(signal.SIGTERM)
    assert app.wait(timeout=30) == 0, app.stdout.read()
    assert time.monotonic() - stopped < 15  # a step, the server's close; not the rest of the job


def test_a_script_gets_progress_and_the_result_but_no_preview_files(client):
    """Previews are the page's: over the API each would be a file its client fetches while the model works.
    Progress (what a script's ETA reads) still comes."""
    import time

    # long enough for previews to be made; one stage, so the bar's length is the steps asked
    job = client.submit(**{**T2I, "steps": 60, "hires": False}, api_name="/txt2img")
    progress = []
    while not job.done():
        progress += job.status().progress_data or []
        time.sleep(0.05)
    assert progress and progress[-1].unit == "steps" and progress[-1].length == 60
    assert len(job.outputs()) == 1  # the result alone
    gallery, recipes = job.outputs()[0]
    assert len(gallery) == 1 and recipes[0]["steps"] == 60


def test_a_style_at_odds_with_the_prompt_is_said_in_the_recipes(client):
    _, recipes = txt2img(client, steps=2, styles=["night"])  # the prompt asks for a white background
    assert any('"white background"' in notice and '"night"' in notice for notice in recipes[0]["notices"])
