"""The app as a designer uses it: every tab driven in headless Chromium (Debian's, through Playwright)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines.front.recipe import read_recipe

pytestmark = [pytest.mark.browser]


def open_page(browser, url, viewport=(1440, 900), **kw):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True, **kw)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("#txt2img-generate", timeout=60_000)
    return page, errors


def generate_text(page, prompt="a large red circle on a white background", shortcut=False):
    page.locator("#txt2img-prompt textarea").fill(prompt)
    if shortcut:
        page.locator("#txt2img-prompt textarea").press("Control+Enter")
    else:
        page.locator("#txt2img-generate").click()
    page.locator(".live-preview img").first.wait_for(timeout=60_000)  # live previews stream in
    page.locator(".live-preview").first.wait_for(state="detached", timeout=60_000)  # and go when it is done
    page.locator(".results img[alt^='seed']").first.wait_for(timeout=60_000)


def open_tab(page, name: str) -> None:
    """Click a tab; on narrow screens the last tabs sit behind a "More tabs" menu."""
    tab = page.get_by_role("tab", name=name)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
        return
    more = page.get_by_role("button", name="More tabs")
    more.click()
    more.locator("xpath=..").locator("button", has_text=name).click()


def toast(page) -> str:
    """The oldest message shown, closed once read (and gone, so the next call reads the next one)."""
    from playwright.sync_api import expect

    bodies = page.locator(".toast-body")
    bodies.first.wait_for(timeout=30_000)
    shown = bodies.count()
    text = bodies.first.inner_text()
    bodies.first.locator(".toast-close").click()
    expect(bodies).to_have_count(shown - 1)
    return text


def test_loads_without_errors_and_every_control_is_labelled(browser, app_url):
    page, errors = open_page(browser, app_url)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, textarea, select')]
            .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby') && !el.closest('label'))
            .map(el => el.outerHTML.slice(0, 120))"""
    )
    assert unlabelled == []
    assert errors == []
    page.context.close()


def test_text_to_image_with_button_and_shortcut_and_the_png_carries_its_recipe(browser, app_url, tmp_path):
    page, errors = open_page(browser, app_url)
    generate_text(page)
    generate_text(page, "a small blue square on a black background", shortcut=True)
    page.locator(".results button.thumbnail-item").first.click()
    with page.expect_download() as download:
        page.locator(".results button[aria-label='Download']").first.click()
    path = tmp_path / "result.png"
    download.value.save_as(path)
    recipe = read_recipe(str(path))
    assert recipe is not None and recipe.prompt == "a small blue square on a black background"
    assert errors == []
    page.context.close()


def test_previews_stream_and_stop_cancels_a_long_run(browser, app_url):
    page, _ = open_page(browser, app_url)
    page.locator("#txt2img-prompt textarea").fill("a green triangle")
    page.locator("input[aria-label='number input for Steps']").fill("150")
    page.locator("input[aria-label='number input for Steps']").press("Enter")
    page.locator("#txt2img-generate").click()
    page.locator(".live-preview img").first.wait_for(timeout=60_000)
    page.locator("#txt2img-stop").click()
    page.wait_for_timeout(3000)
    assert page.locator(".results img[alt^='seed']").count() == 0  # stopped before a final image
    generate_text(page, "a yellow circle")  # and the page keeps working
    page.context.close()


def stroke(page, editor, points):
    canvas = editor.locator("canvas").last
    box = canvas.bounding_box()
    xy = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def send_to_inpaint(page, prompt: str):
    """The first result of the open tab into Inpaint, with what goes there; the brush picked up."""
    page.get_by_role("button", name="Send to Inpaint").first.click()
    editor = fitted_editor(page)
    page.get_by_label("What goes there").fill(prompt)
    editor.get_by_role("button", name="Brush").first.click()
    return editor


def fitted_editor(page):
    """The inpaint editor once the sent 64² picture is in it, zoomed to fit (a stroke made before then
    lands on a canvas that is about to be laid out again), and in view."""
    editor = page.locator("#inpaint-editor")
    editor.locator("canvas").first.wait_for()
    page.wait_for_function(
        """() => [...document.querySelectorAll('#inpaint-editor *')].some(
            (el) => !el.children.length && /^[0-9]+%$/.test(el.textContent.trim()) && el.textContent.trim() !== '100%')""",
        timeout=30_000,
    )
    editor.locator("canvas").last.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)  # the editor's own updates after the picture (its tool, its brush) settle
    return editor


def wait_for_results(page, count: int, toasts_before: int = 0, timeout: float = 60_000) -> None:
    """Until `count` results are on the page; a new message shown instead fails the test with its words."""
    page.wait_for_function(
        f"""() => document.querySelectorAll(".results img[alt^='seed']").length >= {count}
                  || document.querySelectorAll('.toast-body').length > {toasts_before}""",
        timeout=timeout,
    )
    shown = page.locator(".toast-body")
    assert shown.count() <= toasts_before, shown.last.inner_text()


def _fetch(page, src, path):
    path.write_bytes(page.request.get(src).body())
    return path


def test_variations_and_morph_from_the_ui(browser, app_url, tmp_path):
    page, errors = open_page(browser, app_url)
    generate_text(page, "a large orange circle on a gray background")
    page.get_by_role("button", name="Send to Variations").first.click()
    page.locator("#variations-generate").click()
    panel = page.locator(".results").nth(1)
    page.wait_for_function(
        "() => document.querySelectorAll('.results')[1].querySelectorAll(\"img[alt^='seed']\").length === 4",
        timeout=60_000,
    )
    assert panel.locator("img[alt^='seed']").count() == 4
    source = page.locator(".source-image img").first.bounding_box()  # the 64×64 picture, shown large
    assert source["height"] > 150, source
    open_tab(page, "Morph")
    page.get_by_label("From", exact=True).fill("a red circle")
    page.get_by_label("To", exact=True).fill("a blue circle")
    page.locator("input[aria-label='number input for Frames']").fill("4")
    page.locator("input[aria-label='number input for Frames']").press("Enter")
    page.locator("#morph-generate").click()
    page.wait_for_function(
        "() => document.querySelectorAll('.results')[2].querySelectorAll(\"img[alt^='t = ']\").length === 4",
        timeout=90_000,
    )
    links = page.locator("a[download]").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert {link.rsplit(".", 1)[-1] for link in links if link and link.endswith((".gif", ".mp4"))} == {"gif", "mp4"}
    gif = _fetch(page, next(link for link in links if link.endswith(".gif")), tmp_path / "m.gif")
    assert Image.open(gif).n_frames == 4
    assert errors == []
    page.context.close()


@pytest.mark.parametrize("viewport", [(820, 1180), (390, 844)], ids=["tablet", "phone"])
def test_usable_on_tablet_and_phone(browser, app_url, viewport):
    page, errors = open_page(browser, app_url, viewport, has_touch=True, is_mobile=viewport[0] < 500)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    assert page.locator("#txt2img-generate").is_visible()
    open_tab(page, "Inpaint")
    assert page.locator("#inpaint-editor").is_visible() and page.locator("#inpaint-generate").is_visible()
    generate_text_visible = page.locator("#txt2img-generate").is_visible()
    assert not generate_text_visible  # the tab really switched
    assert errors == []
    page.context.close()


def test_painting_a_mask_with_touch_on_a_tablet(browser, app_url):
    page, errors = open_page(browser, app_url, (820, 1180), has_touch=True)
    generate_text(page, "a large green circle on a white background")
    editor = send_to_inpaint(page, "a red square")
    box = editor.locator("canvas").last.bounding_box()
    points = [(box["x"] + box["width"] * (0.35 + 0.3 * i / 12), box["y"] + box["height"] * 0.4) for i in range(13)]
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]})
    for x, y in points[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    toasts = page.locator(".toast-body").count()
    page.locator("#inpaint-generate").click()
    wait_for_results(page, 2, toasts)  # the text-to-image result plus the inpainted ones: the touch stroke made a mask
    assert errors == []
    page.context.close()


def choose_model(page, label: str) -> None:
    page.locator("#model-picker input").click()
    page.get_by_role("option", name=label).click()


def set_number(tab, label: str, value) -> None:
    box = tab.locator(f"input[aria-label='number input for {label}']")
    box.fill(str(value))
    box.press("Enter")


def slider(tab, label: str) -> tuple[str, str, str]:
    """(min, max, value) of a slider in a tab."""
    bar = tab.locator(f"input[aria-label='range slider for {label}']")
    return bar.get_attribute("min"), bar.get_attribute("max"), bar.input_value()


def wait_results(page, tab: str, count: int, alt: str = "seed") -> None:
    images = f"document.querySelector('#tab-{tab} .results').querySelectorAll(\"img[alt^='{alt}']\")"
    page.wait_for_function(f"() => {images}.length >= {count}", timeout=120_000)


def test_every_tab_follows_the_model_picker_and_works_after_a_switch(browser, app_url):
    """Switch from the embedded model (64², 20 steps, guidance 5, Euler a) to a local SD-family folder
    (256–1024, 512², 25 steps, guidance 7, DPM++ 2M Karras): every tab's sizes, steps, guidance and
    samplers follow, and every tab then makes images with it."""
    page, errors = open_page(browser, app_url)
    choose_model(page, "tiny (local)")
    page.wait_for_timeout(1000)
    for tab_id, title, sizes in (("txt2img", "Text to image", True), ("variations", "Variations", False),
                                 ("morph", "Morph", True), ("inpaint", "Inpaint", False)):
        open_tab(page, title)
        tab = page.locator(f"#tab-{tab_id}")
        tab.get_by_text("Advanced", exact=True).click()
        assert slider(tab, "Steps")[2] == "25", tab_id
        assert slider(tab, "Guidance (how closely to follow the prompt)")[2] == "7", tab_id
        scheduler = tab.locator("input[aria-label='Scheduler']").input_value()
        assert scheduler == ("Euler" if tab_id == "morph" else "DPM++ 2M Karras"), (tab_id, scheduler)
        if sizes:
            assert slider(tab, "Width") == ("256", "1024", "512") and slider(tab, "Height") == ("256", "1024", "512")
        set_number(tab, "Steps", 4)  # quick runs from here on (image-to-image needs a step after strength)
        if sizes:
            set_number(tab, "Width", 256)
            set_number(tab, "Height", 256)

    open_tab(page, "Text to image")
    page.locator("#txt2img-prompt textarea").fill("a red circle")
    page.locator("#txt2img-generate").click()
    wait_results(page, "txt2img", 1)
    page.get_by_role("button", name="Send to Variations").first.click()
    page.locator("#variations-generate").click()
    wait_results(page, "variations", 4)

    open_tab(page, "Morph")
    page.get_by_label("From", exact=True).fill("a red circle")
    page.get_by_label("To", exact=True).fill("a blue circle")
    set_number(page.locator("#tab-morph"), "Frames", 2)
    page.locator("#morph-generate").click()
    wait_results(page, "morph", 2, alt="t = ")

    open_tab(page, "Text to image")
    stroke(page, send_to_inpaint(page, "a green square"), [(0.3, 0.3), (0.6, 0.6)])
    page.locator("#inpaint-generate").click()
    wait_results(page, "inpaint", 2)

    # Made by the second model at the sizes that followed it: the embedded model stops at 128 pixels.
    widths = {tab: result_width(page, tab) for tab in ("txt2img", "variations", "morph", "inpaint")}
    assert widths == {"txt2img": 256, "variations": 512, "morph": 256, "inpaint": 256}, widths
    assert errors == []
    page.context.close()


def result_width(page, tab: str) -> int:
    return page.evaluate(f"() => document.querySelector('#tab-{tab} .results img[alt^=\"seed\"], "
                         f"#tab-{tab} .results img[alt^=\"t = \"]').naturalWidth")


def test_a_dropped_png_restores_every_setting_of_its_recipe(browser, app_url, tmp_path):
    """Restoring chooses the recipe's model (every tab follows it) and fills the tab's controls by name,
    guidance rescale and sizes included."""
    from pipelines.front.recipe import Recipe, png_bytes

    recipe = Recipe(task="txt2img", model="tiny", prompt="a blue square", negative_prompt="blurry", seed=77, steps=7,
                    guidance_scale=3.5, scheduler="UniPC", width=320, height=384, settings={"guidance_rescale": 0.7})
    path = tmp_path / "made-elsewhere.png"
    path.write_bytes(png_bytes(Image.new("RGB", (320, 384)), recipe))
    page, errors = open_page(browser, app_url)
    tab = page.locator("#tab-txt2img")
    tab.locator(".restore-row input[type=file]").set_input_files(str(path))
    page.wait_for_function("() => document.querySelector('#txt2img-prompt textarea').value === 'a blue square'",
                           timeout=30_000)
    tab.get_by_text("Advanced", exact=True).click()
    assert page.locator("#model-picker input").input_value().startswith("tiny (local)")
    assert [slider(tab, label)[2] for label in ("Steps", "Guidance (how closely to follow the prompt)")] == ["7", "3.5"]
    assert slider(tab, "Width") == ("256", "1024", "320") and slider(tab, "Height")[2] == "384"
    assert slider(tab, "Guidance rescale (0.7 tames over-exposed colours)")[2] == "0.7"
    assert tab.locator("input[aria-label='Scheduler']").input_value() == "UniPC"
    assert tab.locator("input[aria-label='Seed (−1 = random)']").input_value() == "77"
    open_tab(page, "Variations")  # another tab follows the restored model, with its defaults
    other = page.locator("#tab-variations")
    other.get_by_text("Advanced", exact=True).click()
    assert slider(other, "Steps")[2] == "25"
    assert errors == []
    page.context.close()


def test_sketch_a_blob_at_the_top_left_and_get_the_described_shape_there(browser, app_url, tmp_path):
    from shapeworld.judge import judge

    page, errors = open_page(browser, app_url)
    open_tab(page, "Sketch")
    canvas = page.locator("#sketch-canvas")
    canvas.locator("canvas").first.wait_for()
    page.wait_for_timeout(1000)
    canvas.get_by_role("button", name="Brush").first.click()  # blue is the brush's first colour
    page.wait_for_timeout(500)
    # The 512² paper sits in the middle of the editor at 70 %: these strokes are on its top left quarter.
    for y in (0.22, 0.26, 0.3, 0.34):
        stroke(page, canvas, [(0.25, y), (0.42, y)])
    page.get_by_label("Describe the picture").fill("a blue triangle on a white background")
    page.locator("#sketch-generate").click()
    wait_results(page, "sketch", 2)
    src = page.locator("#tab-sketch .results img[alt^='seed']").first.get_attribute("src")
    reading = judge(np.asarray(Image.open(_fetch(page, src, tmp_path / "sketch.png")).convert("RGB")))
    assert (reading.position, reading.colour, reading.shape) == ("top left", "blue", "triangle")
    canvas.get_by_role("button", name="Clear canvas").click()
    page.wait_for_timeout(500)
    page.locator("#sketch-generate").click()
    message = toast(page)  # nothing drawn now
    assert message.splitlines()[-1].startswith("Sketch: ") and "empty" in message and "Traceback" not in message
    assert errors == []
    page.context.close()


# -- the Library ------------------------------------------------------------------------------------------


def library_text(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function(f"() => (document.querySelector({selector!r})?.innerText || '').includes({text!r})",
                           timeout=30_000)


def pick_in(page, gallery: str, caption: str) -> None:
    """Click the thumbnail of a Library gallery whose caption starts with `caption`."""
    page.locator(f"#{gallery} button.thumbnail-item", has_text=caption).first.click()


def test_the_library_finds_traces_compares_and_restores_what_was_just_made(browser, app_url):
    """Generate, vary, inpaint; the Library has them without a reload: found by a word of the prompt,
    its three-step lineage walkable, compared with its grandparent, its settings restored."""
    page, errors = open_page(browser, app_url)
    generate_text(page, "a large orange square on a white background")
    page.get_by_role("button", name="Send to Variations").first.click()
    page.locator("#variations-generate").click()
    wait_results(page, "variations", 4)
    stroke(page, send_to_inpaint(page, "a chevron"), [(0.3, 0.3), (0.6, 0.6)])
    page.locator("#inpaint-generate").click()
    wait_results(page, "inpaint", 2)

    open_tab(page, "Library")  # no reload: what was just made is there
    search = page.locator("#library-search textarea, #library-search input").first
    search.fill("chevron")
    search.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#library-gallery button.thumbnail-item').length === 2",
                           timeout=30_000)
    page.locator("#library-gallery button.thumbnail-item").first.click()
    wait_text(page, "#library-recipe", "a chevron")
    page.wait_for_function("() => document.querySelectorAll('#library-lineage .caption-label').length === 3",
                           timeout=30_000)
    steps = page.locator("#library-lineage .caption-label").all_inner_texts()
    # Each made at the embedded model's 64² and brought to 256² through its stage (the repaint: as far as
    # its area needed), and labelled so.
    assert steps[0].startswith("text to image, hires ×4 · seed") and steps[1] == "variation, upscaled ×4 · similarity 0.7"
    assert steps[2].startswith("inpaint") and steps[2].endswith(" · a chevron")

    page.locator("#library-mark").click()  # the inpainted image is A…
    pick_in(page, "library-lineage", "text to image")  # …walk to its grandparent…
    wait_text(page, "#library-recipe", "a large orange square")
    page.wait_for_function("() => document.querySelectorAll('#library-children .caption-label').length === 6",
                           timeout=30_000)  # four variations, two inpainted from one of them
    page.locator("#library-compare").click()  # …and compare the two
    page.wait_for_function("() => [...document.querySelectorAll('#library-slider img')]"
                           ".filter(i => i.complete && i.naturalWidth > 0).length >= 2", timeout=30_000)  # both shown
    wait_text(page, "#library-differences", "differ")
    differing = page.locator("#library-differences tr.differs th").all_inner_texts()
    assert {"task", "prompt", "strength"} <= set(differing), differing
    assert "model" not in differing

    pick_in(page, "library-children", "↳↳ inpaint")  # walk down again, and restore its settings
    wait_text(page, "#library-recipe", "a chevron")
    page.locator("#library-restore").click()
    page.locator("#inpaint-generate").wait_for(state="visible", timeout=30_000)
    assert page.get_by_label("What goes there").input_value() == "a chevron"

    page.reload()  # and it is all still there after a reload
    page.wait_for_selector("#txt2img-generate", timeout=60_000)
    open_tab(page, "Library")
    search = page.locator("#library-search textarea, #library-search input").first
    search.fill("chevron")
    search.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#library-gallery button.thumbnail-item').length === 2",
                           timeout=30_000)
    assert errors == []
    page.context.close()


def test_a_dropped_png_shows_its_recipe_or_says_it_has_none(browser, app_url, tmp_path):
    from pipelines.front.recipe import Recipe, png_bytes

    made = Recipe(task="variations", model="shapes", prompt="a teal hexagon", seed=77, steps=7, guidance_scale=3.5,
                  scheduler="Euler", width=64, height=64, settings={"similarity": 0.6}, parent="0123456789abcdef")
    (tmp_path / "elsewhere.png").write_bytes(png_bytes(Image.new("RGB", (64, 64)), made))
    Image.new("RGB", (64, 64)).save(tmp_path / "plain.png")
    page, errors = open_page(browser, app_url)
    open_tab(page, "Library")
    page.locator("#tab-library input[type=file]").set_input_files(str(tmp_path / "elsewhere.png"))
    wait_text(page, "#library-recipe", "variation · similarity 0.6")
    assert "a teal hexagon" in library_text(page, "#library-recipe")
    assert "not in your library" in toast(page)
    page.locator("#tab-library input[type=file]").set_input_files(str(tmp_path / "plain.png"))
    wait_text(page, "#library-recipe", "That image carries no Atelier recipe.")
    assert "No Content Credentials" in library_text(page, "#library-recipe")
    assert errors == []
    page.context.close()


def test_the_library_at_phone_width(browser, app_url, client):
    client.predict(prompt="a small pink circle on a white background", seed=3, steps=2, model="shapes",
                   api_name="/txt2img")
    page, errors = open_page(browser, app_url, (390, 844), has_touch=True, is_mobile=True)
    open_tab(page, "Library")
    page.locator("#library-gallery button.thumbnail-item").first.wait_for(timeout=30_000)
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 1
    thumb = page.locator("#library-gallery button.thumbnail-item").first.bounding_box()
    assert thumb["width"] >= 80  # three a row, big enough to tap
    page.locator("#library-gallery button.thumbnail-item").first.tap()
    page.locator("#library-image img").wait_for(timeout=30_000)
    for button in ("#library-restore", "#library-favourite", "#library-delete", "#library-download"):
        box = page.locator(button).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 391, button
    assert errors == []
    page.context.close()


def test_a_file_that_is_not_an_image_is_refused_in_words_and_the_app_keeps_serving(browser, app_url, tmp_path):
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"this is not a picture at all" * 10)
    page, _ = open_page(browser, app_url)
    open_tab(page, "Variations")
    page.locator("#tab-variations input[type=file]").first.set_input_files(str(junk))
    page.get_by_role("alert").filter(has_text="That file is not an image, or it is damaged.").wait_for(timeout=10_000)
    open_tab(page, "Inpaint")
    page.locator("#inpaint-editor input[type=file]").first.set_input_files(str(junk))
    page.get_by_role("alert").filter(has_text="That file is not an image, or it is damaged.").wait_for(timeout=10_000)
    open_tab(page, "Text to image")
    generate_text(page)


def lora_row(tab, name: str):
    """The picked LoRA's row: its weight and its Remove button."""
    return tab.locator(".lora-row").filter(has_text=name).first


def test_a_style_a_lora_and_a_weighted_word_are_recorded_saved_and_restored(browser, app_url, tmp_path):
    """As a new user: pick the shipped "night" style and a LoRA, change its weight, weight a word, generate;
    the PNG records all of it; save the settings as a style; restoring the PNG brings the LoRA back."""
    page, errors = open_page(browser, app_url)
    tab = page.locator("#tab-txt2img")
    tab.locator(".styles-picker input").click()
    page.get_by_role("option", name="night").click()
    tab.locator(".lora-adder input").click()
    page.get_by_role("option", name="grain").click()
    lora_row(tab, "grain").wait_for(timeout=10_000)
    weight = lora_row(tab, "grain").locator("input[type=number]")
    weight.fill("0.5")
    weight.press("Enter")
    weight.blur()
    page.wait_for_timeout(1000)
    generate_text(page, "a (blue:1.2) square")
    page.locator(".results button.thumbnail-item").first.click()
    with page.expect_download() as download:
        page.locator(".results button[aria-label='Download']").first.click()
    path = tmp_path / "styled.png"
    download.value.save_as(path)
    recipe = read_recipe(str(path))
    assert recipe.prompt == "a (blue:1.2) square on a black background" and recipe.styles == ["night"]
    assert recipe.loras == [["grain", 0.5]]
    assert "<lora:grain:0.5>" in Image.open(path).info["parameters"]

    tab.locator(".style-name textarea, .style-name input").first.fill("my night")
    tab.locator(".style-save").click()
    assert "saved" in toast(page)
    tab.locator(".styles-picker input").click()
    page.get_by_role("option", name="my night").wait_for(timeout=10_000)
    page.keyboard.press("Escape")

    page.reload()
    page.wait_for_selector("#txt2img-generate", timeout=60_000)
    tab = page.locator("#tab-txt2img")
    tab.locator(".restore-row input[type=file]").set_input_files(str(path))
    page.wait_for_function("() => document.querySelector('#txt2img-prompt textarea').value.includes('black background')",
                           timeout=30_000)
    lora_row(tab, "grain").wait_for(timeout=10_000)
    assert lora_row(tab, "grain").locator("input[type=number]").input_value() == "0.5"
    assert errors == []
    page.context.close()


def test_a_server_stopped_mid_run_is_said_in_words_and_a_run_works_once_it_is_back(browser, tmp_path):
    """Stopped as Ctrl+C stops it (SIGTERM), then started again on the same address: the page says so in
    words, keeps what was typed, and runs again."""
    from playwright.sync_api import expect

    from tests.conftest import app_process

    flags = ["--outputs", str(tmp_path / "outputs")]
    steps = "#tab-txt2img input[aria-label='number input for Steps']"
    with app_process(flags, tmp_path / "first.log") as url:
        page, _ = open_page(browser, url)
        page.locator("#txt2img-prompt textarea").fill("a large red circle on a white background")
        page.locator(steps).fill("150")  # a run long enough to stop in the middle
        page.locator(steps).press("Enter")
        page.locator("#txt2img-generate").click()
        page.locator(".live-preview img").first.wait_for(timeout=60_000)
    banner = page.locator("#server-lost")
    expect(banner).to_have_text("The server stopped during this run — nothing was lost from the Library. "
                                "Try again when it is back.", timeout=30_000)
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    with app_process(flags, tmp_path / "second.log", port=port):
        expect(banner).to_contain_text("The server is back", timeout=30_000)  # the page loaded again
        expect(page.locator("#txt2img-prompt textarea")).to_have_value("a large red circle on a white background")
        page.locator(steps).fill("2")
        page.locator(steps).press("Enter")
        page.locator("#txt2img-generate").click()
        expect(banner).to_have_count(0)
        page.locator(".results img[alt^='seed']").first.wait_for(timeout=60_000)
