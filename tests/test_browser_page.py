"""The page as a new user meets it, in headless Chromium: the layout on a phone, a tablet and a laptop,
results shown whole, Stop, Morph's progress, the model picker and panel, the wording of refusals and
notices, and restoring settings from a dropped Atelier PNG. One app serves the whole module."""

from __future__ import annotations

import base64
import io
import re
import time

import pytest
from PIL import Image

from pipelines.front.recipe import Recipe, png_bytes
from tests.test_browser import _fetch, generate_text, open_page, open_tab, set_number, slider, toast
from ui.models import FOLLOW_SECONDS

pytestmark = [pytest.mark.browser]

PHONE, TABLET, LAPTOP = (390, 844), (768, 1024), (1440, 900)


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


@pytest.mark.parametrize("viewport", [PHONE, TABLET], ids=["phone", "tablet"])
def test_phone_and_tablet_show_the_header_every_tab_and_the_results_early(browser, app_url, viewport):
    page, errors = open_page(browser, app_url, viewport, has_touch=True, is_mobile=viewport[0] < 500)
    width, height = viewport
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width  # no sideways scrolling
    title = box(page, "#title")
    assert title["height"] < 160 and title["width"] > 200, title  # not a column one letter wide
    assert box(page, "#model-picker")["height"] < 140  # the picker's box is its own size, not the title's
    for name in ("Text to image", "Variations", "Morph", "Inpaint", "Sketch"):  # no tab behind a menu
        assert page.get_by_role("tab", name=name).is_visible(), name
    assert page.get_by_role("button", name="More tabs").count() == 0
    # The prompt, the main button and the results, all within the first two screens.
    for selector in ("#txt2img-prompt", "#txt2img-generate", "#tab-txt2img .results"):
        assert box(page, selector)["y"] < 2 * height - 100, selector
    generate_text(page)
    results = box(page, "#tab-txt2img .results img[alt^='seed']")
    assert results["y"] + results["height"] < 2 * height
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    assert errors == []
    page.context.close()


def clipped(page, selector: str) -> list:
    """For each element matched: whether something it sits in (with overflow hidden or scrolling) cuts
    it off, or it reaches past the bottom of the window."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].map((el) => {
            const r = el.getBoundingClientRect();
            if (r.bottom > window.innerHeight + 1) return true;
            for (let a = el.parentElement; a; a = a.parentElement) {
                const s = getComputedStyle(a);
                if (s.overflowY === 'visible' && s.overflowX === 'visible') continue;
                const b = a.getBoundingClientRect();
                if (r.top < b.top - 1 || r.bottom > b.bottom + 1) return true;
            }
            return false;
        })""",
        selector,
    )


def test_a_batch_of_four_shows_whole_on_a_laptop_with_nothing_over_it(browser, app_url):
    page, errors = open_page(browser, app_url, LAPTOP)
    set_number(page.locator("#tab-txt2img"), "Images", 4)
    page.locator("#txt2img-prompt textarea").fill("a small red circle at the top left on a white background")
    page.locator("#txt2img-generate").click()
    page.locator(".live-preview img").first.wait_for(timeout=60_000)
    assert clipped(page, ".live-preview img") == [False]  # the forming picture is shown whole
    assert page.locator(".live-preview img").evaluate("img => getComputedStyle(img).objectFit") == "contain"
    page.wait_for_function("() => document.querySelectorAll(\"#tab-txt2img .results img[alt^='seed']\").length === 4",
                           timeout=60_000)
    page.wait_for_timeout(500)
    page.evaluate("() => window.scrollTo(0, 0)")
    assert clipped(page, "#tab-txt2img .results img[alt^='seed']") == [False] * 4  # all four, on screen at once
    first = box(page, "#tab-txt2img .results img[alt^='seed']")
    corner = page.evaluate(  # what is drawn at the first image's top left corner: the image itself
        "([x, y]) => document.elementFromPoint(x, y).closest('button.thumbnail-item') !== null",
        [first["x"] + 6, first["y"] + 6],
    )
    assert corner
    assert errors == []
    page.context.close()


def test_stop_brings_back_the_previous_results_says_so_and_never_sends_a_preview(browser, app_url, tmp_path):
    page, errors = open_page(browser, app_url)
    generate_text(page, "a large green square on a white background")
    before = page.locator("#tab-txt2img .results img[alt^='seed']").first.get_attribute("src")
    set_number(page.locator("#tab-txt2img"), "Steps", 150)
    page.locator("#txt2img-generate").click()
    page.locator(".live-preview img").first.wait_for(timeout=60_000)
    page.locator("#txt2img-stop").click()
    status = page.locator("#tab-txt2img .block.status")
    status.get_by_text("Stopped").wait_for(timeout=10_000)
    page.wait_for_timeout(1000)
    assert page.locator(".live-preview").count() == 0  # the half-made picture is gone
    gallery = page.locator("#tab-txt2img .results img")
    assert gallery.count() == 1 and gallery.first.get_attribute("src") == before
    assert page.locator("#tab-txt2img .results img[alt='preview']").count() == 0
    page.get_by_role("button", name="Send to Variations").first.click()
    page.locator("#tab-variations .source-image img").first.wait_for(timeout=10_000)
    sent = page.locator("#tab-variations .source-image img").first.get_attribute("src")
    original = Image.open(_fetch(page, before, tmp_path / "before.png")).convert("RGB")
    received = Image.open(_fetch(page, sent, tmp_path / "sent.png")).convert("RGB")
    assert list(received.getdata()) == list(original.getdata())  # the finished result, not noise
    assert errors == []
    page.context.close()


def test_morph_progress_counts_frames_over_the_whole_job(browser, app_url):
    page, errors = open_page(browser, app_url)
    open_tab(page, "Morph")
    tab = page.locator("#tab-morph")
    page.get_by_label("From", exact=True).fill("a red circle")
    page.get_by_label("To", exact=True).fill("a blue circle")
    set_number(tab, "Frames", 6)
    page.locator("#morph-generate").click()
    seen: list[int] = []
    for _ in range(400):
        found = re.search(r"Frame (\d) of 6", tab.inner_text())
        if found:
            seen.append(int(found.group(1)))
        if tab.locator(".results img[alt^='t = ']").count() == 6:
            break
        page.wait_for_timeout(100)
    assert seen and seen == sorted(seen) and seen[-1] >= 4, seen  # one count rising through the frames
    assert errors == []
    page.context.close()


def test_the_picker_says_what_each_model_needs_and_the_fetch_command_stays(browser, app_url):
    page, errors = open_page(browser, app_url)
    page.locator("#model-picker input").click()
    options = [text.split("\n")[-1] for text in page.get_by_role("option").all_inner_texts()]  # no "✓"
    words = dict(text.split(" · ") for text in options)
    assert words["Shapes (embedded, 64×64, CPU)"] in ("on disk", "in memory")
    assert words["tiny (local)"] in ("on disk", "in memory")
    assert words["Stable Diffusion 1.5"] == "not available offline"  # the tests run offline
    page.get_by_role("option", name=re.compile("^Stable Diffusion 1.5")).click()
    page.locator("#txt2img-prompt textarea").fill("a red circle")
    page.locator("#txt2img-generate").click()
    message = page.locator(".toast-body").filter(has_text="hf download")
    message.wait_for(timeout=30_000)
    page.wait_for_timeout(12_000)  # longer than any toast that closes by itself
    assert message.is_visible()
    copied = message.evaluate("el => { getSelection().selectAllChildren(el); return getSelection().toString() }")
    assert "hf download stable-diffusion-v1-5/stable-diffusion-v1-5" in copied
    message.locator(".toast-close").click()
    message.wait_for(state="detached", timeout=5_000)  # until the person closes it
    assert errors == []
    page.context.close()


def eventually(check, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.2)


def residency(page) -> dict[str, list[str]]:
    rows = page.locator("#residency .virtual-row[role=row]").all()
    cells = [row.locator("[role=gridcell]").all_inner_texts() for row in rows]
    return {cell[0].strip(): [c.strip() for c in cell[1:]] for cell in cells if cell}


def test_the_models_panel_acts_on_the_clicked_row_in_plain_words(browser, app_url, client):
    page, errors = open_page(browser, app_url)
    page.get_by_text("Models in memory", exact=True).click()
    generate_text(page)  # the embedded model is in memory: the panel says so by itself, no Refresh pressed
    shapes = "Shapes (embedded, 64×64, CPU)"
    eventually(lambda: residency(page)[shapes][0].startswith("in memory"), seconds=5)
    page.locator("#model-picker input").click()
    assert page.get_by_role("option", name=re.compile("^Shapes .* in memory$")).count() == 1
    page.locator("#model-picker input").press("Escape")
    table = residency(page)
    assert table[shapes][0].startswith("in memory") and table[shapes][1].endswith("MB") and table[shapes][2] == "no"
    text = page.locator("#residency").inner_text()
    assert not re.search(r"\b(true|false|MB 0)\b", text)
    assert table["Stable Diffusion 1.5"] == ["not available offline", "—", "—"]
    # Keep loaded, then Unload: the row says what happened, and the button says what it will do next.
    page.locator("#residency [role=gridcell]").get_by_text(shapes, exact=True).click()
    assert shapes in page.locator("#residency-selected").inner_text()
    page.locator("#residency-keep").click()
    eventually(lambda: page.locator("#residency-keep").inner_text() == "Let it unload")
    assert residency(page)[shapes][2] == "yes"
    page.locator("#residency-unload").click()
    eventually(lambda: residency(page)[shapes] == ["on disk", "—", "—"])
    assert page.locator("#residency-keep").inner_text() == "Keep loaded"
    assert page.locator("#residency-keep").is_disabled() and page.locator("#residency-unload").is_disabled()
    # Another row: the buttons now concern that model, not the one in the header's picker.
    page.locator("#residency [role=gridcell]").get_by_text("tiny (local)", exact=True).click()
    page.wait_for_function("() => document.querySelector('#residency-selected').innerText.includes('tiny')")
    assert page.locator("#model-picker input").input_value().startswith("Shapes")
    # Someone else's run loads a model: this page follows within the panel's interval, untouched.
    client.predict(prompt="a red circle", model="tiny", width=256, height=256, steps=2, api_name="/txt2img")
    eventually(lambda: residency(page)["tiny (local)"][0].startswith("in memory"), seconds=3 * FOLLOW_SECONDS)
    assert errors == []
    page.context.close()


def test_refusals_use_the_labels_on_the_page_and_clamped_values_are_said(browser, app_url, tmp_path):
    page, errors = open_page(browser, app_url)
    open_tab(page, "Morph")
    page.get_by_label("From", exact=True).fill("a red circle")
    page.locator("#morph-generate").click()
    message = toast(page)
    assert message.splitlines()[-1] == "To: must not be empty" and "prompt_b" not in message
    page.locator(".toast-body").first.wait_for(state="detached", timeout=5_000)
    open_tab(page, "Variations")
    page.locator("#variations-generate").click()
    message = toast(page)
    assert message.splitlines()[-1].startswith("Image to vary: ") and "image:" not in message
    # A value typed past a slider's bounds: the slider clamps it, and a note says what and why.
    open_tab(page, "Text to image")
    tab = page.locator("#tab-txt2img")
    tab.get_by_text("Advanced", exact=True).click()
    # Each note read as it is made (once, under a loaded suite, the first was gone by the third's time).
    for label, typed, bound in (("Width", 100000, 128), ("Images", 50, 8), ("Steps", 1000, 150)):
        set_number(tab, label, typed)
        notes = tab.locator(".clamp-note").all_inner_texts()
        assert any(n.startswith(f"{label}: {typed}") and f"set to {bound}" in n for n in notes), notes
    # the box last typed in (still focused) already shows what its note says
    assert tab.locator("input[aria-label='number input for Steps']").input_value() == "150"
    assert slider(tab, "Steps")[2] == "150"  # and the slider took it
    # A large upload is scaled to what the model takes, and the results say so.
    big = tmp_path / "big.png"
    Image.new("RGB", (1200, 900), (200, 30, 30)).save(big)
    open_tab(page, "Variations")
    page.locator("#tab-variations .source-image input[type=file]").set_input_files(str(big))
    page.wait_for_timeout(1000)
    set_number(page.locator("#tab-variations"), "Variations", 1)
    page.locator("#variations-generate").click()
    status = page.locator("#tab-variations .block.status")
    status.get_by_text("scaled down").wait_for(timeout=60_000)
    assert ("The image (1200×900) was scaled down to 64×48: the size this model works at; its ×4 stage brings the "
            "results back to 256×192.") in status.inner_text()
    assert errors == []
    page.context.close()


def drop_on(page, selector: str, data: bytes) -> None:
    """Drop a PNG file on an element, as a person dragging it from their desktop does."""
    page.evaluate(
        """([selector, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const files = new DataTransfer();
            files.items.add(new File([bytes], 'made.png', { type: 'image/png' }));
            const target = document.querySelector(selector);
            for (const type of ['dragenter', 'dragover', 'drop']) {
                target.dispatchEvent(new DragEvent(type, { dataTransfer: files, bubbles: true, cancelable: true }));
            }
        }""",
        [selector, base64.b64encode(data).decode()],
    )


def test_an_atelier_png_dropped_on_a_prompt_or_an_image_offers_its_settings(browser, app_url):
    recipe = Recipe(task="txt2img", model="shapes", prompt="a small blue square", seed=77, steps=9,
                    guidance_scale=3.5, scheduler="Euler", width=64, height=64)
    data = png_bytes(Image.new("RGB", (64, 64), (20, 40, 220)), recipe)
    page, errors = open_page(browser, app_url)
    # Text to image: the button is in sight (not in a closed section), and a drop on the prompt restores.
    assert page.locator("#tab-txt2img").get_by_role("button", name="Restore settings from a PNG…").is_visible()
    drop_on(page, "#txt2img-prompt textarea", data)
    page.wait_for_function("() => document.querySelector('#txt2img-prompt textarea').value === 'a small blue square'",
                           timeout=30_000)
    assert page.locator("#tab-txt2img input[aria-label='Seed (−1 = random)']").input_value() == "77"
    # Inpaint: the picture becomes the one to work on, and the tab offers its settings.
    open_tab(page, "Inpaint")
    tab = page.locator("#tab-inpaint")
    tab.locator("#inpaint-editor canvas").first.wait_for()
    page.wait_for_timeout(1500)  # the editor readies its canvas before it takes a picture
    tab.locator("input[type=file]").first.set_input_files(files=[{"name": "made.png", "mimeType": "image/png",
                                                                   "buffer": data}])
    offer = tab.locator(".restore-offer").first
    offer.wait_for(timeout=30_000)
    assert "a small blue square" in offer.inner_text() and "seed 77" in offer.inner_text()
    assert "Upload an image" not in tab.locator("#inpaint-editor").inner_text()  # and the picture is in the editor
    offer.get_by_role("button", name="Restore its settings").click()
    page.wait_for_function(
        "() => document.querySelector('#tab-inpaint textarea').value === 'a small blue square'", timeout=30_000
    )
    tab.get_by_text("Advanced", exact=True).click()
    assert tab.locator("input[aria-label='number input for Steps']").input_value() == "9"
    assert tab.locator(".restore-offer").count() == 0
    # A picture with no recipe is just a picture: no offer.
    plain = Image.new("RGB", (64, 64), (255, 255, 255))
    open_tab(page, "Variations")
    other = page.locator("#tab-variations")
    buffer = io.BytesIO()
    plain.save(buffer, format="PNG")
    other.locator(".source-image input[type=file]").set_input_files(
        files=[{"name": "plain.png", "mimeType": "image/png", "buffer": buffer.getvalue()}]
    )
    page.wait_for_timeout(1500)
    assert other.locator(".restore-offer").count() == 0
    assert errors == [], errors
    page.context.close()


# -- what a new user hit: slips and failures leave the page as it was, nothing sent is hidden -----------


def error_badges(page, selector: str = "body") -> int:
    """Gradio's red "Error" badges over components (what a failed event leaves on its outputs)."""
    return page.locator(f"{selector} [data-testid=status-tracker]").filter(has_text=re.compile(r"^\s*Error\s*$")).count()


def test_send_to_morph_shows_the_image_it_sent_and_what_it_is_for(browser, app_url):
    page, errors = open_page(browser, app_url)
    generate_text(page)
    page.get_by_role("button", name="Send to Morph").first.click()
    tab = page.locator("#tab-morph")
    sent = tab.locator(".source-image img").first
    sent.wait_for(timeout=10_000)
    assert sent.is_visible()  # in sight, not inside a closed section
    hint = page.locator("#morph-one-end")
    hint.wait_for(timeout=10_000)
    assert "From image is set: add a To image" in hint.inner_text()
    assert errors == []
    page.context.close()


def test_a_library_action_with_nothing_picked_is_a_notice_that_changes_nothing(browser, app_url):
    page, errors = open_page(browser, app_url)
    generate_text(page)  # something in the library, nothing picked
    open_tab(page, "Library")
    tab = page.locator("#tab-library")
    page.locator("#library-gallery button.thumbnail-item").first.wait_for(timeout=30_000)
    for button in ("#library-delete", "#library-restore", "#library-favourite", "#library-download", "#library-mark",
                   "#library-compare"):
        page.locator(button).click()
        assert "Pick an image" in toast(page), button
        assert error_badges(page) == 0, button
    tab.get_by_role("button", name="Send to Variations").click()
    assert "Pick an image in the library first." in toast(page)
    assert page.get_by_role("tab", name="Library").get_attribute("aria-selected") == "true"  # still here
    assert page.locator("#library-gallery button.thumbnail-item").count() >= 1  # the grid is as it was
    assert error_badges(page) == 0
    assert errors == [], errors  # no HTTP 500s in the console
    page.context.close()


def test_a_failed_run_keeps_the_results_shown(browser, app_url):
    page, errors = open_page(browser, app_url)
    generate_text(page)
    before = page.locator("#tab-txt2img .results img[alt^='seed']").first.get_attribute("src")
    page.locator("#model-picker input").click()
    page.get_by_role("option", name=re.compile("^Stable Diffusion 1.5")).click()  # not on this machine
    page.locator("#txt2img-generate").click()
    page.locator(".toast-body").filter(has_text="hf download").wait_for(timeout=30_000)
    page.locator("#tab-txt2img .block.status").get_by_text("Not made").wait_for(timeout=10_000)
    assert page.locator("#tab-txt2img .results img[alt^='seed']").first.get_attribute("src") == before
    assert error_badges(page, "#tab-txt2img") == 0
    assert errors == []
    page.context.close()


def test_esc_says_stopped_only_while_something_runs(browser, app_url):
    page, _ = open_page(browser, app_url)
    status = page.locator("#tab-txt2img .block.status")
    page.locator("#model-picker input").click()
    page.keyboard.press("Escape")  # closing a dropdown, nothing running
    page.locator("body").press("Escape")
    page.wait_for_timeout(1500)
    assert "Stopped" not in status.inner_text()
    set_number(page.locator("#tab-txt2img"), "Steps", 150)
    page.locator("#txt2img-prompt textarea").fill("a small red circle")
    page.locator("#txt2img-generate").click()
    page.locator(".live-preview img").first.wait_for(timeout=60_000)
    page.locator("body").press("Escape")
    status.get_by_text("Stopped").wait_for(timeout=10_000)
    page.context.close()


def test_loras_are_rows_with_a_weight_and_a_remove_button_and_messages_show_tags(browser, app_url):
    page, errors = open_page(browser, app_url)
    tab = page.locator("#tab-txt2img")
    assert tab.locator(".lora-table, [role=grid]").count() == 0  # no spreadsheet to add columns to
    tab.locator(".lora-adder input").click()
    page.get_by_role("option", name="grain").click()
    row = tab.locator(".lora-row").filter(has_text="grain")
    row.wait_for(timeout=10_000)
    assert row.locator("input[type=number]").input_value() == "1"
    assert row.locator("textarea, input[type=text]").count() == 0  # the name cannot be edited
    # A message that quotes syntax shows it as text, not swallowed as HTML.
    page.locator("#txt2img-prompt textarea").fill("a red circle <lora:<b:1>")
    page.locator("#txt2img-generate").click()
    assert "no LoRA named '<b'" in toast(page)
    row.get_by_role("button", name="Remove").click()
    row.wait_for(state="detached", timeout=10_000)
    assert tab.locator(".lora-row").count() == 0
    assert errors == []
    page.context.close()


def painted_share(page, editor) -> float:
    """How much of the editor's canvas shows the picture's purple (the picture is a purple square)."""
    shot = Image.open(io.BytesIO(editor.locator("canvas").last.screenshot())).convert("RGB")
    r, g, b = (shot.getchannel(c) for c in "RGB")
    purple = sum(1 for x, y, z in zip(r.getdata(), g.getdata(), b.getdata()) if x > 90 and z > 120 and y < 90)
    return purple / (shot.width * shot.height)


def inpaint_a_purple_square(browser, app_url):
    page, errors = open_page(browser, app_url)
    generate_text(page, "a large purple square on a white background")
    page.get_by_role("button", name="Send to Inpaint").first.click()
    editor = page.locator("#inpaint-editor")
    editor.locator("canvas").first.wait_for()
    page.wait_for_timeout(2000)
    editor.get_by_role("button", name="Brush", exact=True).click()
    return page, errors, editor


def test_inpaint_brush_fits_the_picture(browser, app_url):
    page, errors, editor = inpaint_a_purple_square(browser, app_url)
    editor.get_by_role("button", name="Brush Size").click()
    size = editor.locator("input[type=range], input[type=number]").first
    assert int(float(size.input_value())) == 8  # a 256² picture (Hires, the default): 8 px, not Gradio's 25
    assert errors == []
    page.context.close()


def test_inpaint_undo_never_removes_the_picture(browser, app_url):
    page, errors, editor = inpaint_a_purple_square(browser, app_url)
    shown = painted_share(page, editor)
    assert shown > 0.05
    canvas = editor.locator("canvas").last.bounding_box()
    for y in (0.45, 0.55):
        page.mouse.move(canvas["x"] + canvas["width"] * 0.4, canvas["y"] + canvas["height"] * y)
        page.mouse.down()
        page.mouse.move(canvas["x"] + canvas["width"] * 0.6, canvas["y"] + canvas["height"] * y, steps=6)
        page.mouse.up()
    for _ in range(4):  # two strokes, four Undos
        undo = editor.get_by_role("button", name="Undo")
        if undo.is_enabled():
            undo.click()
        page.wait_for_timeout(300)
    assert painted_share(page, editor) > shown * 0.8  # the picture is still there
    assert errors == []
    page.context.close()


def test_a_file_that_is_not_an_image_is_refused_and_the_picture_stays(browser, app_url, tmp_path):
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"this is not a picture at all" * 10)
    picture = tmp_path / "red.png"
    Image.new("RGB", (64, 64), (220, 20, 20)).save(picture)
    page, errors = open_page(browser, app_url)
    open_tab(page, "Variations")
    area = page.locator("#tab-variations .source-image")
    area.locator("input[type=file]").first.set_input_files(str(picture))
    area.locator("img").first.wait_for(timeout=10_000)
    area.locator("input[type=file]").first.set_input_files(str(junk))
    page.get_by_role("alert").filter(has_text="That file is not an image, or it is damaged.").wait_for(timeout=10_000)
    assert area.locator("img").first.is_visible()  # the picture that was there stays
    for name, editor in (("Inpaint", "#inpaint-editor"), ("Sketch", "#sketch-canvas")):
        open_tab(page, name)
        page.locator(f"{editor} input[type=file]").first.set_input_files(str(junk))
        page.locator(f"#tab-{name.lower()}").get_by_role("alert").filter(
            has_text="That file is not an image, or it is damaged.").wait_for(timeout=10_000)
    page.wait_for_timeout(1000)
    assert errors == [], errors  # no uncaught page error
    page.context.close()


def test_labels_and_captions_are_not_cut_or_covered_and_the_library_scrolls_to_what_is_asked(browser, app_url):
    page, errors = open_page(browser, app_url)
    picker = page.locator("#model-picker input")
    assert float(picker.evaluate("el => parseFloat(getComputedStyle(el).paddingRight)")) >= 20  # text ends before the arrow
    open_tab(page, "Inpaint")
    page.locator("#tab-inpaint").get_by_text("Outpaint", exact=True).click()
    left, right = (box(page, f"#tab-inpaint input[aria-label='range slider for {side}']") for side in ("Left", "Right"))
    assert abs(left["y"] - right["y"]) < 2  # side by side, at one height
    open_tab(page, "Sketch")
    label = box(page, "#sketch-canvas label, #sketch-canvas [data-testid=block-label]")
    tools = box(page, "#sketch-canvas button[aria-label='Undo']")
    assert label["x"] + label["width"] <= tools["x"] - 40  # the label ends before the toolbar
    open_tab(page, "Text to image")
    generate_text(page)
    open_tab(page, "Library")
    first = page.locator("#library-gallery button.thumbnail-item").first
    first.wait_for(timeout=30_000)
    assert page.locator("#library-gallery [data-testid=block-label]").count() == 0  # nothing over the first picture
    caption = page.locator("#library-gallery .caption-label").first
    assert caption.evaluate("el => el.scrollWidth <= el.clientWidth + 1")  # "text to image · seed …", not "text to i…"
    assert "txt2img" not in page.locator("#tab-library").get_by_label("Operation").input_value()
    first.click()
    page.locator("#library-image img").wait_for(timeout=30_000)
    page.locator("#library-mark").click()
    toast(page)
    page.locator("#library-compare").click()
    page.locator("#library-slider").wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    slider_box = box(page, "#library-slider")
    assert 0 <= slider_box["y"] < 900  # the comparison comes into view
    assert errors == []
    page.context.close()


def test_a_thumbnail_tapped_on_a_phone_scrolls_to_its_details(browser, app_url):
    page, errors = open_page(browser, app_url, PHONE, has_touch=True, is_mobile=True)
    generate_text(page)
    open_tab(page, "Library")
    page.locator("#library-gallery button.thumbnail-item").first.tap()
    page.locator("#library-image img").wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    details = box(page, "#library-image")
    assert -10 <= details["y"] < PHONE[1] - 100  # on screen, not ~700 px below
    assert errors == []
    page.context.close()
