"""The app as a designer uses it: every tab driven in headless Chromium (Debian's, through Playwright)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from pipelines.recipe import read_recipe

pytestmark = [pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


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
    page.locator(".results img[alt='preview']").first.wait_for(timeout=60_000)  # live previews stream in
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
    page.locator(".toast-body").first.wait_for(timeout=30_000)
    text = page.locator(".toast-body").first.inner_text()
    page.locator(".toast-close").first.click()
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
    page.locator(".results img[alt='preview']").first.wait_for(timeout=60_000)
    page.locator("#txt2img-stop").click()
    page.wait_for_timeout(3000)
    assert page.locator(".results img[alt^='seed']").count() == 0  # stopped before a final image
    generate_text(page, "a yellow circle")  # and the page keeps working
    page.context.close()


def stroke(page, editor, points, touch=False):
    canvas = editor.locator("canvas").last
    box = canvas.bounding_box()
    xy = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def test_inpaint_from_a_result_with_eraser_undo_and_an_empty_mask_message(browser, app_url, tmp_path):
    page, errors = open_page(browser, app_url)
    generate_text(page, "a large purple square on a white background")
    page.get_by_role("button", name="Send to Inpaint").first.click()
    editor = page.locator("#inpaint-editor")
    editor.locator("canvas").first.wait_for()
    page.wait_for_timeout(1500)
    page.get_by_label("What goes there").fill("a green circle")
    editor.get_by_role("button", name="Brush").first.click()
    # Undo removes the stroke: the mask is empty, and the message says so.
    stroke(page, editor, [(0.45, 0.45), (0.55, 0.55)])
    editor.get_by_role("button", name="Undo").first.click()
    page.locator("#inpaint-generate").click()
    message = toast(page)
    assert "mask" in message and "empty" in message and "Traceback" not in message
    # The eraser wipes a stroke out: empty again.
    stroke(page, editor, [(0.45, 0.5), (0.55, 0.5)])
    editor.get_by_role("button", name="Erase").first.click()
    stroke(page, editor, [(0.40, 0.5), (0.60, 0.5)])
    stroke(page, editor, [(0.40, 0.48), (0.60, 0.48)])
    stroke(page, editor, [(0.40, 0.52), (0.60, 0.52)])
    page.locator("#inpaint-generate").click()
    assert "mask" in toast(page)
    # A real stroke: the result changes inside it, and nowhere far from it.
    editor.get_by_role("button", name="Brush").first.click()
    stroke(page, editor, [(0.2, 0.25), (0.35, 0.3)])
    page.locator("#inpaint-generate").click()
    panel = page.locator(".results").last
    panel.locator("img[alt^='seed']").first.wait_for(timeout=60_000)
    src = panel.locator("img[alt^='seed']").first.get_attribute("src")
    before_src = page.locator(".results").first.locator("img[alt^='seed']").first.get_attribute("src")
    after = np.asarray(Image.open(_fetch(page, src, tmp_path / "after.png")).convert("RGB")).astype(int)
    before = np.asarray(Image.open(_fetch(page, before_src, tmp_path / "before.png")).convert("RGB")).astype(int)
    changed = np.abs(after - before).sum(-1) > 0
    assert changed.any()
    assert not changed[44:, 44:].any() and changed.mean() < 0.75  # the change stays around the stroke (top left)
    assert errors == []
    page.context.close()


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
    page.get_by_role("button", name="Send to Inpaint").first.click()
    editor = page.locator("#inpaint-editor")
    editor.locator("canvas").first.wait_for()
    page.wait_for_timeout(1000)
    editor.get_by_role("button", name="Brush").first.click()
    box = editor.locator("canvas").last.bounding_box()
    points = [(box["x"] + box["width"] * f, box["y"] + box["height"] * 0.4) for f in (0.35, 0.45, 0.55, 0.65)]
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]})
    for x, y in points[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.get_by_label("What goes there").fill("a red square")
    page.locator("#inpaint-generate").click()
    page.wait_for_function(  # the text-to-image result plus the inpainted ones
        "() => document.querySelectorAll(\".results img[alt^='seed']\").length >= 2", timeout=60_000
    )  # a touch stroke made a mask: no "empty mask" message, a result instead
    assert page.locator(".toast-body").count() == 0
    assert errors == []
    page.context.close()
