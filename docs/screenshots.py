"""Regenerate the README's screenshots: each tab at desktop size, in use, and Inpaint on a tablet.

    python docs/screenshots.py       # needs Debian's chromium and playwright
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

import app  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def wait_results(page, index: int, count: int, alt: str = "seed") -> None:
    page.wait_for_function(
        f"() => document.querySelectorAll('.results')[{index}].querySelectorAll(\"img[alt^='{alt}']\").length >= {count}",
        timeout=120_000,
    )
    page.wait_for_timeout(1500)  # the gallery stays dimmed until the event has fully ended


def main() -> None:
    demo, url = app.serve_in_background(["--outputs", ""])
    out = ROOT / "docs"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        page.wait_for_selector("#txt2img-generate")
        page.locator("#txt2img-prompt textarea").fill("a large blue triangle on a white background")
        page.locator("input[aria-label='number input for Images']").fill("4")
        page.locator("input[aria-label='number input for Images']").press("Enter")
        page.locator("#txt2img-generate").click()
        wait_results(page, 0, 4)
        page.screenshot(path=out / "txt2img.png")

        page.get_by_role("button", name="Send to Variations").first.click()
        page.locator("#variations-generate").click()
        wait_results(page, 1, 4)
        page.screenshot(path=out / "variations.png")

        page.get_by_role("tab", name="Morph").click()
        page.get_by_label("From", exact=True).fill("a red circle on a white background")
        page.get_by_label("To", exact=True).fill("a blue circle on a white background")
        page.locator("#morph-generate").click()
        wait_results(page, 2, 8, alt="t = ")
        page.screenshot(path=out / "morph.png")

        tablet = browser.new_page(viewport={"width": 820, "height": 1180}, has_touch=True)
        tablet.goto(url)
        tablet.wait_for_selector("#txt2img-generate")
        tablet.locator("#txt2img-prompt textarea").fill("a large purple square on a gray background")
        tablet.locator("#txt2img-generate").click()
        wait_results(tablet, 0, 1)
        tablet.get_by_role("button", name="Send to Inpaint").first.click()
        editor = tablet.locator("#inpaint-editor")
        editor.locator("canvas").first.wait_for()
        tablet.wait_for_timeout(1000)
        editor.get_by_role("button", name="Brush").first.click()
        box = editor.locator("canvas").last.bounding_box()
        tablet.mouse.move(box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.3)
        tablet.mouse.down()
        tablet.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.45, steps=10)
        tablet.mouse.up()
        tablet.get_by_label("What goes there").fill("a yellow circle on a gray background")
        tablet.locator("#inpaint-generate").click()
        tablet.wait_for_function(  # the text-to-image result plus two inpainted ones (tabs render lazily)
            "() => document.querySelectorAll(\".results img[alt^='seed']\").length >= 3", timeout=120_000
        )
        tablet.screenshot(path=out / "inpaint-tablet.png", full_page=True)
        browser.close()
    demo.close()
    print("screenshots written to", out)


if __name__ == "__main__":
    main()
