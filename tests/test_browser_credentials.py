"""Content Credentials in the Library, in headless Chromium: a result's details say it is signed and
AI-made; a file changed after signing says so; another maker's JPEG is read too."""

from __future__ import annotations

import io

import pytest
from gradio_client import handle_file
from PIL import Image

from pipelines import read_recipe
from pipelines.front.credentials import Credentials, Identity
from tests.helpers import changed_pixel
from tests.test_browser import open_page, open_tab, pick_in, wait_text

pytestmark = pytest.mark.browser


def test_the_library_reads_credentials_of_its_images_and_of_any_dropped_file(browser, app_url, client, tmp_path):
    images, _ = client.predict(prompt="a small violet star on a white background", seed=31, steps=2, width=64,
                               height=64, model="shapes", api_name="/txt2img")
    with open(images[0]["image"], "rb") as f:
        signed = f.read()
    assert client.predict(handle_file(images[0]["image"]), api_name="/credentials")["valid"]
    (tmp_path / "changed.png").write_bytes(changed_pixel(signed))
    # Another maker's JPEG, signed by a key this studio has never seen.
    picture = io.BytesIO()
    Image.open(io.BytesIO(signed)).convert("RGB").save(picture, format="JPEG")
    elsewhere = Credentials(Identity.per_process()).sign(picture.getvalue(), "image/jpeg", read_recipe(signed))
    (tmp_path / "elsewhere.jpg").write_bytes(elsewhere)

    page, errors = open_page(browser, app_url)
    open_tab(page, "Library")
    assert "signed with Content Credentials" in page.locator("#library-where").inner_text()
    search = page.locator("#library-search textarea, #library-search input").first
    search.fill("violet")
    search.press("Enter")
    pick_in(page, "library-gallery", "")
    wait_text(page, "#library-recipe", "Content Credentials")
    details = page.locator("#library-recipe").inner_text()
    assert "The signature is valid" in details and "this studio's own key" in details
    assert "AI-generated: made by a generative AI model" in details

    drop = page.locator("#tab-library input[type=file]")
    drop.set_input_files(str(tmp_path / "changed.png"))
    wait_text(page, "#library-recipe", "The image was changed after it was signed")
    drop.set_input_files(str(tmp_path / "elsewhere.jpg"))
    wait_text(page, "#library-recipe", "a signer not on this studio's trust list")
    assert "That image carries no Atelier recipe." in page.locator("#library-recipe").inner_text()
    assert errors == []
    page.context.close()
