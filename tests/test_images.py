"""Uploads of every kind: normalised to RGB within the pixel limit, or refused with a clear message."""

import io

import numpy as np
import pytest
from PIL import Image

from pipelines import ValidationError
from pipelines.front.images import DECODE_LIMIT, load_image
from tests.helpers import bomb_png

LIMIT = 512 * 512


def write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def png(image: Image.Image, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **kw)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("empty.png", b"", "empty"),
        ("random.png", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "not an image"),
        ("truncated.png", png(Image.new("RGB", (300, 300), (1, 2, 3)))[:200], "damaged"),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "not an image"),
        ("paper.png", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "not an image"),
        ("bomb.png", bomb_png(20000, 20000), "too large"),
        ("huge.png", bomb_png(10000, 10000), "too large"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.endswith((".png", ".svg")) else "",
)
def test_bad_files_are_refused_clearly(tmp_path, name, data, message):
    with pytest.raises(ValidationError, match=message) as e:
        load_image(write(tmp_path, name, data), LIMIT)
    assert e.value.field == "image"


def test_missing_file_and_no_file():
    with pytest.raises(ValidationError, match="required"):
        load_image(None, LIMIT)
    with pytest.raises(ValidationError, match="did not arrive"):
        load_image("/nonexistent/upload.png", LIMIT)


def modes():
    rgba = Image.new("RGBA", (40, 30), (255, 0, 0, 0))
    palette = Image.new("P", (40, 30), 1)
    palette.info["transparency"] = 1
    sixteen = Image.fromarray(np.full((30, 40), 65535, np.uint16))
    return {
        "cmyk.jpg": (Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG"),
        "grey.png": (Image.new("L", (40, 30), 128), "PNG"),
        "sixteen.png": (sixteen, "PNG"),
        "palette.png": (palette, "PNG"),
        "rgba.png": (rgba, "PNG"),
        "photo.webp": (Image.new("RGB", (40, 30), (0, 0, 255)), "WEBP"),
        "anim.gif": (Image.new("P", (40, 30), 3), "GIF"),
    }


@pytest.mark.parametrize("name", list(modes()))
def test_every_common_mode_becomes_rgb(tmp_path, name):
    image, fmt = modes()[name]
    buffer = io.BytesIO()
    extra = {"save_all": True, "append_images": [image.copy()]} if fmt == "GIF" else {}
    image.save(buffer, fmt, **extra)
    out = load_image(write(tmp_path, name, buffer.getvalue()), LIMIT)
    assert out.mode == "RGB" and out.size == (40, 30)


def test_transparency_lands_on_white_and_sixteen_bit_keeps_its_level(tmp_path):
    rgba = load_image(write(tmp_path, "a.png", png(Image.new("RGBA", (4, 4), (255, 0, 0, 0)))), LIMIT)
    assert rgba.getpixel((0, 0)) == (255, 255, 255)
    sixteen = Image.fromarray(np.full((4, 4), 32768, np.uint16))
    assert 126 <= load_image(write(tmp_path, "b.png", png(sixteen)), LIMIT).getpixel((0, 0))[0] <= 129


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 255, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    assert load_image(write(tmp_path, "r.jpg", buffer.getvalue()), LIMIT).size == (20, 40)


def test_large_images_are_scaled_into_the_pixel_limit(tmp_path):
    out = load_image(write(tmp_path, "big.png", png(Image.new("RGB", (2000, 1000)))), LIMIT)
    assert out.width * out.height <= LIMIT and abs(out.width / out.height - 2) < 0.01


def test_the_decode_limit_refuses_before_decoding_and_admits_just_below(tmp_path):
    """An image just inside the decode limit is opened (then scaled); one pixel row more is refused
    from its header alone."""
    side = int(DECODE_LIMIT**0.5)
    rows = DECODE_LIMIT // side  # side × rows ≤ the limit < side × (rows + 1)
    inside = load_image(write(tmp_path, "inside.png", bomb_png(side, rows)), LIMIT)
    assert inside.width * inside.height <= LIMIT
    with pytest.raises(ValidationError, match="too large"):
        load_image(write(tmp_path, "outside.png", bomb_png(side, rows + 1)), LIMIT)


def test_memory_returns_to_baseline_after_hostile_uploads(tmp_path):
    import gc

    import psutil

    files = [write(tmp_path, "bomb.png", bomb_png(20000, 20000)), write(tmp_path, "huge.png", bomb_png(10000, 10000)),
             write(tmp_path, "big.png", png(Image.new("RGB", (3000, 3000))))]
    process = psutil.Process()
    for path in files:  # warm-up: first decodes allocate PIL's own buffers
        try:
            load_image(path, LIMIT)
        except ValidationError:
            pass
    gc.collect()
    baseline = process.memory_info().rss
    for _ in range(10):
        for path in files:
            try:
                load_image(path, LIMIT)
            except ValidationError:
                pass
    gc.collect()
    assert process.memory_info().rss - baseline < 64 * 2**20  # a 20000² bomb alone would be 1.2 GB
