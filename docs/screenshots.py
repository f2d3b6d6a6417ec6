"""Regenerate the README's screenshots from the app started as a user starts it (`python app.py`): each
tab on a laptop (1440×900) after making something, the Library, Inpaint on a tablet (768×1024), and Text to image on a
phone (390×844).

    python docs/screenshots.py             # needs Debian's chromium and playwright
    python docs/screenshots.py upscale     # only some of them, by name
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def start_app(outputs: str) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free port, as a person runs it; returns once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "app.py", "--port", str(port), "--no-open-browser", "--outputs", outputs]
    app = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            urllib.request.urlopen(url)
            return app, url
        except OSError:
            time.sleep(0.5)
    app.terminate()
    raise SystemExit("the app did not start")


def wait_results(page, tab: str, count: int, alt: str = "seed") -> None:
    images = f"document.querySelector('#tab-{tab} .results').querySelectorAll(\"img[alt^='{alt}']\")"
    page.wait_for_function(f"() => {images}.length >= {count}", timeout=180_000)
    page.wait_for_timeout(1500)  # the gallery stays dimmed until the event has fully ended


def generate(page, prompt: str, images: int) -> None:
    page.locator("#txt2img-prompt textarea").fill(prompt)
    page.locator("input[aria-label='number input for Images']").fill(str(images))
    page.locator("input[aria-label='number input for Images']").press("Enter")
    page.locator("#txt2img-generate").click()
    wait_results(page, "txt2img", images)


def laptop(browser, url: str, out: Path) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(url)
    page.wait_for_selector("#txt2img-generate")
    generate(page, "a red circle at the top left and a blue square at the bottom right on a black background", 4)
    page.screenshot(path=out / "txt2img.png")

    page.get_by_role("button", name="Send to Variations").first.click()
    page.locator("#variations-generate").click()
    wait_results(page, "variations", 4)
    page.screenshot(path=out / "variations.png")

    page.get_by_role("tab", name="Morph").click()
    page.get_by_label("From", exact=True).fill("a red circle on a white background")
    page.get_by_label("To", exact=True).fill("a blue circle on a white background")
    page.locator("#morph-generate").click()
    wait_results(page, "morph", 8, alt="t = ")
    page.screenshot(path=out / "morph.png")

    page.get_by_role("tab", name="Library").click()
    page.locator("#library-gallery button.thumbnail-item").nth(9).click()  # a variation: its lineage shows
    page.wait_for_function("() => document.querySelectorAll('#library-lineage .caption-label').length >= 2",
                           timeout=60_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=out / "library.png")
    page.close()


def upscale(browser, url: str, out: Path) -> None:
    """A 64² result (Hires, on by default, turned off) sent to Upscale and made 256², its prompt filled from
    its recipe."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(url)
    page.wait_for_selector("#txt2img-generate")
    page.locator("#txt2img-hires").get_by_text("Hires: upscale in the same run").first.click()
    page.locator("#txt2img-hires input[type=checkbox]").uncheck()
    generate(page, "a large yellow triangle and a purple circle on a white background", 1)
    page.get_by_role("button", name="Send to Upscale").first.click()
    page.locator("#upscale-generate").click()
    wait_results(page, "upscale", 1)
    page.screenshot(path=out / "upscale.png")
    page.close()


def lora(browser, url: str, out: Path) -> None:
    """The outline LoRA picked at weight 1: its row and four results in one view."""
    page = browser.new_page(viewport={"width": 1440, "height": 1480})
    page.goto(url)
    page.wait_for_selector("#txt2img-generate")
    page.locator("#tab-txt2img .lora-adder input").click()
    page.get_by_role("option", name="outline").click()
    page.locator("#tab-txt2img").get_by_label("Seed (−1 = random)").fill("11")
    generate(page, "a large blue square on a white background", 4)
    page.screenshot(path=out / "lora.png")
    page.close()


def tablet(browser, url: str, out: Path) -> None:
    page = browser.new_page(viewport={"width": 768, "height": 1024}, has_touch=True)
    page.goto(url)
    page.wait_for_selector("#txt2img-generate")
    generate(page, "a large purple square at the top left on a gray background", 1)
    page.get_by_role("button", name="Send to Inpaint").first.click()
    editor = page.locator("#inpaint-editor")
    editor.locator("canvas").first.wait_for()
    page.wait_for_timeout(1000)
    editor.get_by_role("button", name="Brush").first.click()
    box = editor.locator("canvas").last.bounding_box()
    for row in (0.6, 0.7, 0.8):  # paint over the empty lower right: the model adds a figure there
        page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * row)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * row, steps=10)
        page.mouse.up()
    page.get_by_label("What goes there").fill("a yellow triangle")
    page.locator("#inpaint-generate").click()
    wait_results(page, "inpaint", 2)
    page.screenshot(path=out / "inpaint-tablet.png")
    page.close()


def phone(browser, url: str, out: Path) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page.goto(url)
    page.wait_for_selector("#txt2img-generate")
    generate(page, "a small red circle on a white background", 4)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=out / "phone.png")
    page.locator("#txt2img-generate").scroll_into_view_if_needed()
    page.evaluate("() => window.scrollBy(0, document.querySelector('#txt2img-prompt').getBoundingClientRect().top - 8)")
    page.screenshot(path=out / "phone-results.png")
    page.close()


def main() -> None:
    out = ROOT / "docs"
    with tempfile.TemporaryDirectory() as outputs:
        app, url = start_app(outputs)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
                shots = dict(laptop=laptop, upscale=upscale, lora=lora, tablet=tablet, phone=phone)
                for name in sys.argv[1:] or shots:
                    shots[name](browser, url, out)
                browser.close()
        finally:
            app.terminate()
            app.wait()
    print("screenshots written to", out)


if __name__ == "__main__":
    main()
