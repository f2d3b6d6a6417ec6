"""Stand-ins and inputs that more than one test module uses (test modules import from here, never from
each other)."""

import struct
import zlib

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
