"""What a person waits for: from the Generate click to the new picture on the page, in headless Chromium.

    python bench/wait.py --runs 5 --out bench/results

Starts `python app.py` as the README does (default settings, the embedded model) and, in one run, times a
click on Generate until the new result replaces the last one in the gallery, at a laptop's and a phone's
viewport, with Hires on (the embedded model's default: 64² then its ×4 stage, 256²) and off (64²),
interleaved so drift in machine load hits both alike. Prints the medians and the ratio on / off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.speed import start_app  # noqa: E402

VIEWPORTS = {"laptop": dict(viewport={"width": 1440, "height": 900}),
             "phone": dict(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)}
PROMPT = "a large green triangle on a white background"
RESULTS = "Array.from(document.querySelectorAll('#tab-txt2img .results img[alt^=seed]')).map(i => i.src).join()"


def set_hires(page, on: bool) -> None:
    box = page.locator("#txt2img-hires input[type=checkbox]")
    if not box.is_visible():  # the accordion starts closed
        page.locator("#txt2img-hires").get_by_text("Hires: upscale in the same run").first.click()
    box.set_checked(on)


def one_click(page) -> tuple[float, tuple[int, int]]:
    """Seconds from the click to a new picture in the gallery (a preview is not the picture), and its size."""
    before = page.evaluate(f"() => {RESULTS}")
    start = time.perf_counter()
    page.locator("#txt2img-generate").click()
    page.wait_for_function(f"(before) => {{ const now = {RESULTS}; return now && now !== before; }}", arg=before,
                           timeout=120_000)
    seconds = time.perf_counter() - start
    size = page.evaluate("() => { const i = document.querySelector('#tab-txt2img .results img[alt^=seed]');"
                         " return [i.naturalWidth, i.naturalHeight]; }")
    page.wait_for_timeout(1000)  # the event ends (the gallery is dimmed until then)
    return seconds, tuple(size)


def measure(url: str, runs: int) -> dict:
    report = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        for name, options in VIEWPORTS.items():
            page = browser.new_page(**options)
            page.goto(url)
            page.wait_for_selector("#txt2img-generate")
            page.locator("#txt2img-prompt textarea").fill(PROMPT)
            times, sizes = {True: [], False: []}, {}
            for run in range(runs + 1):  # the first round warms both up and is not kept
                for hires in (True, False):
                    set_hires(page, hires)
                    seconds, sizes[hires] = one_click(page)
                    if run:
                        times[hires].append(seconds)
            on, off = statistics.median(times[True]), statistics.median(times[False])
            report[name] = dict(hires_s=on, plain_s=off, ratio=on / off, hires_size=sizes[True], plain_size=sizes[False],
                                hires_runs=times[True], plain_runs=times[False])
            page.close()
        browser.close()
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        app, url = start_app(Path(folder), ["--no-open-browser"])
        try:
            report = dict(date=str(date.today()), device="cpu", runs=args.runs, **measure(url, args.runs))
        finally:
            app.terminate()
            app.wait(timeout=60)
    for name in VIEWPORTS:
        r = report[name]
        print(f"{name:7} Hires on {r['hires_s']:.2f} s ({r['hires_size'][0]}²) · off {r['plain_s']:.2f} s "
              f"({r['plain_size'][0]}²) · ratio {r['ratio']:.2f}×")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"wait-{report['date']}.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
