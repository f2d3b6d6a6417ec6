"""Stand-ins and inputs that more than one test module uses (test modules import from here, never from
each other)."""

import io
import struct
import zlib

import numpy as np
from PIL import Image

from pipelines import Job, ModelState, Output


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header announcing a huge image, with a tiny compressed body (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * (width + 1) * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


class CannedRunner:
    """A runner that does no device work at all: it hands back a grey image per seed."""

    capacity = 1

    def __init__(self):
        self.submitted = []

    def submit(self, task, request, seeds):
        self.submitted.append((task, request, seeds))
        job: Job = Job()
        size = request.output_size()
        images = [Image.new("RGB", size, (i * 40, 90, 90)) for i in range(len(seeds))]
        job.run(lambda: Output(images, seeds, [{"seam": 1.5}] * len(seeds), notices=("canned",)))
        return job

    def models(self):
        return [ModelState("shapes", "resident")]

    def unload(self, model):
        return False

    def pin(self, model, pinned):
        pass

    def close(self):
        pass


def changed_pixel(png: bytes) -> bytes:
    """The same file, chunks and manifest kept, with one pixel of its picture changed."""
    def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
        out, at = [], 8
        while at < len(data):
            length = struct.unpack(">I", data[at:at + 4])[0]
            out.append((data[at + 4:at + 8], data[at:at + 12 + length]))
            at += 12 + length
        return out

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).copy()
    pixels[5, 5, 0] ^= 0xFF
    other = io.BytesIO()
    Image.fromarray(pixels).save(other, format="PNG")
    new_data = b"".join(raw for kind, raw in chunks(other.getvalue()) if kind == b"IDAT")
    kept = chunks(png)
    first = next(i for i, (kind, _) in enumerate(kept) if kind == b"IDAT")
    rest = b"".join(raw for kind, raw in kept[first:] if kind != b"IDAT")
    return png[:8] + b"".join(raw for _, raw in kept[:first]) + new_data + rest
