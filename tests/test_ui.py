"""The page's wiring, without a browser or a model: every control fills a request field of its own name,
every model-dependent control follows the picker, and "Send to" carries the image's id everywhere."""

import dataclasses
import io
import json
import types

import gradio as gr
import pytest
from PIL import Image, PngImagePlugin

from pipelines import TASKS, Registry, Studio
from pipelines.front.recipe import RECIPE_KEY
from tests.helpers import CannedRunner
from ui.app import build_page


@pytest.fixture(scope="module")
def page():
    return build_page(Studio(CannedRunner(), Registry()), model="shapes")


@pytest.fixture(scope="module")
def tabs(page):
    return page[1]


def names_used(fn, seen=None) -> set[str]:
    """Every name a handler's code refers to, through its nested functions and the functions it closes
    over (the wrappers that hand it the request, the helpers it shares)."""
    seen = set() if seen is None else seen
    if not isinstance(fn, types.FunctionType) or fn in seen:
        return set()
    seen.add(fn)
    codes, names = [fn.__code__], set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    for cell in fn.__closure__ or ():
        try:
            names |= names_used(cell.cell_contents, seen)
        except ValueError:  # a cell not filled yet
            pass
    return names


def test_a_handler_that_tells_the_person_something_goes_through_the_queue(page):
    """gr.Info and gr.Warning reach the page only from a queued event; without the queue gradio prints
    them on the server's console, and the person sees nothing happen ("Style saved" went missing so)."""
    demo, _ = page
    telling = [f for f in demo.fns.values() if names_used(f.fn) & {"Info", "Warning"}]
    assert "save_style" in [f.name for f in telling]  # the walk finds a message where there is one
    assert [f.name for f in telling if not f.queue] == []


def test_every_registered_task_with_a_module_has_a_tab_in_registry_order(tabs):
    assert list(tabs) == [name for name in TASKS.names if name != "outpaint"]  # Outpaint lives in Inpaint


def test_every_control_is_wired_to_a_request_field_of_its_name(tabs):
    for name, tab in tabs.items():
        fields = {f.name for f in dataclasses.fields(TASKS.get(name).request)}
        if name == "inpaint":  # the tab serves Outpaint too
            fields |= {f.name for f in dataclasses.fields(TASKS.get("outpaint").request)}
        assert set(tab.controls.fields) <= fields, (name, set(tab.controls.fields) - fields)
        assert {"prompt", "seed", "steps", "guidance_scale", "scheduler", "negative_prompt"} <= set(tab.controls.fields)


def test_every_tab_follows_the_model_with_its_limits_and_defaults(tabs):
    sdxl = Registry().get("sdxl")
    for name, tab in tabs.items():
        updates = tab.controls.follow(sdxl)
        steps = updates[tab.controls.fields["steps"]]
        scheduler = updates[tab.controls.fields["scheduler"]]
        assert steps.value == 30 and updates[tab.controls.fields["guidance_scale"]].value == 6.0, name
        assert scheduler.choices == [(s, s) for s in sdxl.schedulers] and scheduler.value in sdxl.schedulers, name
        if "width" in tab.controls.fields:
            width = updates[tab.controls.fields["width"]]
            assert (width.minimum, width.maximum, width.value) == (512, 1536, 1024), name


def test_a_restored_value_is_kept_where_the_model_allows_it(tabs):
    morph = tabs["morph"].controls
    turbo = Registry().get("sd-turbo")
    updates = morph.restore(turbo, {"scheduler": "UniPC", "steps": 3, "prompt_b": "a blue circle", "position": 0.5})
    assert updates[morph.fields["scheduler"]].value == "Euler"  # UniPC is not offered: Morph's own preference
    assert updates[morph.fields["steps"]].value == 3 and updates[morph.fields["prompt_b"]] == "a blue circle"


def test_send_to_carries_the_image_and_its_id_into_every_tab_that_takes_one(tabs):
    receiving = {name: tab.receive for name, tab in tabs.items() if tab.receive}
    assert set(receiving) == {"variations", "morph", "inpaint", "sketch", "upscale"}
    image = Image.new("RGB", (8, 8), (1, 2, 3))
    # Upscale takes the picture's words from its recipe along with it.
    info = PngImagePlugin.PngInfo()
    info.add_text(RECIPE_KEY, json.dumps(dict(task="txt2img", model="shapes", prompt="a red circle", negative_prompt="blur",
                                              seed=1, steps=2, guidance_scale=5.0, scheduler="Euler a", width=8, height=8)))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info)
    assert receiving["upscale"].accept(Image.open(buffer), "0123abcd")[1:3] == ("a red circle", "blur")
    for name, receive in receiving.items():
        values = receive.accept(image, "0123abcd")
        assert isinstance(receive.outputs[-1], gr.State) and values[-1] == "0123abcd", name
        if isinstance(values[0], gr.ImageMask):  # Inpaint sizes its brush to the picture too
            picture = Image.open(values[0].value["background"]["path"])
            assert picture.format == "PNG" and list(picture.convert("RGB").getdata()) == list(image.getdata()), name
            continue
        picture = values[0]["background"] if isinstance(values[0], dict) else values[0]
        assert picture is image, name


def test_the_inpaint_brush_is_sized_to_the_picture():
    """Gradio's "auto" brush is 25 px whatever the picture: 40 % of the embedded model's 64²."""
    from ui.tabs.inpaint import receive

    assert receive(Image.new("RGB", (64, 64))).brush.default_size == 2
    assert receive(Image.new("RGB", (512, 768))).brush.default_size == 16


def test_an_upload_keeps_the_parent_only_when_it_is_the_image_sent(tmp_path):
    """An image editor reports the image "Send to" handed it as an upload: that one keeps its id for the
    lineage; any other picture starts a new lineage."""
    from pipelines.front.recipe import image_id
    from ui.images import same_parent

    sent, other = Image.new("RGB", (8, 8), (1, 2, 3)), Image.new("RGB", (8, 8), (9, 9, 9))
    sent.convert("RGBA").save(tmp_path / "sent.png")
    other.save(tmp_path / "other.png")
    parent = image_id(sent)
    assert same_parent({"background": str(tmp_path / "sent.png"), "layers": []}, parent) == parent
    assert same_parent(str(tmp_path / "sent.png"), parent) == parent
    assert same_parent({"background": str(tmp_path / "other.png"), "layers": []}, parent) is None
    assert same_parent(str(tmp_path / "other.png"), None) is None


def test_a_bug_is_logged_once_with_its_own_traceback_and_a_refusal_not_at_all(capfd, caplog):
    """Gradio prints a traceback for every error a handler raises unless told not to: a refusal of bad
    input would dump one, and a bug would show only the message re-raised for the page."""
    import socket

    from gradio_client import Client

    from pipelines import Job
    from ui import build_ui

    class FailingRunner(CannedRunner):
        def submit(self, task, request, seeds):
            def work():
                raise RuntimeError("disk on fire")

            job = Job()
            job.run(work)
            return job

    demo = build_ui(Studio(FailingRunner(), Registry()), model="shapes").queue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        request = dict(prompt="a red circle", seed=1, steps=2, width=64, height=64, model="shapes")
        with pytest.raises(Exception, match="steps"):
            client.predict(**{**request, "steps": 0}, api_name="/txt2img")
        with pytest.raises(Exception, match="Something went wrong"):
            client.predict(**request, api_name="/txt2img")
    finally:
        demo.close()
    assert "Traceback" not in capfd.readouterr().err  # Gradio printed neither
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1 and str(logged[0].exc_info[1]) == "disk on fire"


def test_an_inpainted_result_says_in_words_how_its_edge_was_handled():
    from pipelines import Recipe
    from ui.tabs.inpaint import seed_and_seam

    def caption(**settings):
        return seed_and_seam(Recipe(task="inpaint", model="shapes", prompt="x", seed=3, steps=4, guidance_scale=5.0,
                                    scheduler="Euler a", width=64, height=64, settings=settings))

    assert caption(seam=31.7, edge="blended") == "seed 3 · blended edge"
    assert caption(seam=2.0, edge="clean") == "seed 3 · clean edge"
    assert caption(seam=9.0, edge="visible") == "seed 3 · edge shows"
    assert caption(seam=3.5) == "seed 3"  # a recipe from before the edge was recorded


def test_a_refusal_in_the_page_names_the_label_and_over_http_the_parameter():
    from pipelines import ValidationError
    from ui.messages import field_message

    error = ValidationError("prompt_b", "must not be empty")
    assert field_message(error, {"prompt_b": "To"}) == "To: must not be empty"
    assert field_message(error, {}) == "prompt_b: must not be empty"


def test_a_resized_upload_is_said_with_what_it_became_and_why(tmp_path):
    from pipelines import VariationsRequest

    big, small = tmp_path / "big.png", tmp_path / "small.png"
    Image.new("RGB", (3000, 3000), "red").save(big)
    Image.new("RGB", (32, 32), "red").save(small)
    studio = Studio(CannedRunner(), Registry(), max_pixels=1024 * 1024)

    def notices(model, path):
        return studio.submit(VariationsRequest(model=model, image=str(path), num_images=1)).result().notices

    assert notices("shapes", big)[0] == ("The image (3000×3000) was scaled down to 64×64: the size this model works at; "
                                         "its ×4 stage brings the results back to 256×256.")
    assert notices("shapes", small)[0] == "The image (32×32) was scaled up to 64×64: the size this model works at."
    assert notices("sd15", tmp_path / "big.png")[0].endswith("to 512×512: the size this model works at.")
    mask = tmp_path / "mask.png"
    Image.new("L", (3000, 3000), 255).save(mask)
    inpaint = TASKS.get("inpaint").request(model="sd15", image=str(big), mask=str(mask), prompt="x")
    said = studio.submit(inpaint).result().notices
    assert said[0] == "The image (3000×3000) was scaled down to 1024×1024: this server takes at most 1,048,576 pixels."


def test_the_library_tells_a_recipe_in_the_words_of_its_tab(tabs):
    """The details pane names each setting as its tab does, switches as yes/no, and leaves out machine facts."""
    from ui.tabs.library import page_words, plain_words

    words = page_words(tabs)
    entry = {"image_id": "ab12", "created": "2026-12-04T20:00", "width": 64, "height": 64, "parent": None}
    inpaint = {"task": "inpaint", "model": "shapes", "prompt": "a red circle", "seed": 1, "steps": 20,
               "guidance_scale": 5.0, "scheduler": "Euler a",
               "settings": {"strength": 0.85, "only_masked": True, "color_correction": False, "mask_hash": "ae547e"}}
    text = plain_words({**entry, "recipe": inpaint}, words["inpaint"])
    assert "Strength 0\\.85" in text and "Inpaint only the masked area yes" in text
    assert "Match colours at the border when the seam shows no" in text
    assert "True" not in text and "False" not in text and "hash" not in text and "ae547e" not in text
    sketch = {**inpaint, "task": "sketch", "settings": {"strength": 0.6}}
    assert "How freely 0\\.6" in plain_words({**entry, "recipe": sketch}, words["sketch"])


def test_no_prompt_box_cuts_what_is_pasted_into_it(tabs):
    """A Textbox's max_length makes the browser drop the rest of a long paste without a word; the server's
    refusal says how long the text is and leaves it in the box."""
    boxes = [c for tab in tabs.values() for name, c in tab.controls.fields.items() if "prompt" in name]
    assert len(boxes) >= 2 * len(tabs) and all(isinstance(c, gr.Textbox) for c in boxes)
    assert [c.label for c in boxes if c.max_length] == []


def test_a_job_started_while_its_event_is_cancelled_is_stopped_once_it_exists():
    """Stop (or an API cancel) landing while the request is still being submitted: the submission's thread
    goes on, and the job it makes is cancelled as soon as it exists rather than running unheld."""
    import asyncio
    import threading

    from ui.events import running

    class Started:
        def __init__(self):
            self.cancelled = threading.Event()

        def cancel(self):
            self.cancelled.set()

    job, submitting, time_to_submit = Started(), threading.Event(), threading.Event()

    def start():
        submitting.set()
        time_to_submit.wait(5)
        return job

    async def handler():
        async with running(start):
            pytest.fail("the event was cancelled before its job existed")

    async def scenario():
        waiting = asyncio.ensure_future(handler())
        await asyncio.to_thread(submitting.wait, 5)
        waiting.cancel()  # what Gradio does to the event's task
        with pytest.raises(asyncio.CancelledError):
            await waiting
        time_to_submit.set()  # the submission finishes after the cancel
        await asyncio.to_thread(job.cancelled.wait, 5)

    asyncio.run(scenario())
    assert job.cancelled.is_set()


def test_restoring_a_recipe_made_without_hires_turns_hires_off(tabs):
    """A recipe records Hires and Fast draft only while they are on: one without them was made with them off,
    so restoring it turns off what is ticked now (else the restored recipe would make another picture)."""
    from pipelines import Recipe, Txt2ImgRequest
    from ui.restore import recipe_updates

    studio, controls = Studio(CannedRunner(), Registry()), tabs["txt2img"].controls
    plain = Recipe(task="txt2img", model="shapes", prompt="a red circle", seed=7, steps=20, guidance_scale=5.0,
                   scheduler="Euler a", width=64, height=64)
    value = lambda update: getattr(update, "value", update)  # noqa: E731 (Hires follows the model: an update)
    updates = recipe_updates(studio, object(), tabs, tabs["txt2img"], plain)
    assert value(updates[controls.fields["hires"]]) is False and updates[controls.fields["feature_reuse"]] == 1
    upscaled = Recipe(**{**plain.to_dict(), "settings": {"hires": True, "hires_scale": 2}})
    updates = recipe_updates(studio, object(), tabs, tabs["txt2img"], upscaled)
    assert value(updates[controls.fields["hires"]]) is True and updates[controls.fields["hires_scale"]] == 2
    # and what is left out is exactly what was off: a request with both off records neither
    request = Txt2ImgRequest(model="shapes", prompt="a red circle", hires=False, feature_reuse=1)
    assert not set(Txt2ImgRequest.left_out_when_off()) & set(request.recipe_fields())
    on = Txt2ImgRequest(model="shapes", prompt="a red circle", hires=True, hires_scale=4, feature_reuse=2)
    assert {"hires", "hires_scale", "hires_steps", "feature_reuse"} <= set(on.recipe_fields())


def test_the_progress_bar_says_what_runs():
    """A cascade's stage is said on the bar ("Upscaling"), not counted as more sampling or more frames."""
    import asyncio
    import threading
    import time

    from pipelines import Job, Output
    from ui.events import previews

    job, said = Job(), []

    def work():
        for shown, (step, phase) in enumerate(((2, ""), (5, "Upscaling")), 1):
            job.report(step, 6, phase=phase)
            deadline = time.monotonic() + 30
            while len(said) < shown and time.monotonic() < deadline:  # the handler has shown it: the next
                time.sleep(0.01)
        job.run(lambda: Output([], []))

    async def follow():
        progress = lambda value, desc="", unit="": said.append(desc)  # noqa: E731
        async for _ in previews(job, progress, describe=lambda event: "Frame 1 of 2"):
            pass

    threading.Thread(target=work).start()
    asyncio.run(follow())
    assert said == ["Frame 1 of 2", "Upscaling"]
