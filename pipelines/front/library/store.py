"""Where a library's files live: the outputs folder on disk, or PNG bytes in memory for a public demo.

Layout of the outputs folder (every path in the index is relative to it, with forward slashes):

    <date>/<time>-<task>-<seed>-<image id>.png           the local single user's results (no sign-in)
    users/<name>/<date>/<time>-…png                       a signed-in person's results
    .trash/<the same relative path>                       deleted, until restored or the trash is emptied
    .thumbs/<image id>.webp                               thumbnails, made once
    .favourites/<the same relative path>                  empty markers, so favourites survive a rebuild
    library.sqlite                                        the index; everything in it can be rebuilt

The user is read back from the path, so a rebuild recovers whose every image is.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote

from ..outputs import OutputStore, file_stem, write_whole
from ..recipe import Recipe

USERS = "users"
TRASH = ".trash"
THUMBS = ".thumbs"
FAVOURITES = ".favourites"


def user_name(user: str | None) -> str:
    """The name rows are kept under: '' for the local single user."""
    return (user or "").strip()


def user_folder(outputs: str | Path, user: str | None) -> Path:
    """The folder a person's results are saved in: the outputs folder itself for the local single user,
    `users/<name>/` below it for a signed-in one (the name percent-encoded, dots included, so no name can
    climb out of its folder or hide in a dot-folder)."""
    name = user_name(user)
    folder = Path(outputs)
    return folder / USERS / quote(name, safe="").replace(".", "%2E") if name else folder


def user_of(path: str) -> str:
    """Whose image a relative path is: the inverse of `user_folder`."""
    parts = path.split("/")
    return unquote(parts[1]) if len(parts) > 2 and parts[0] == USERS else ""


class DiskFiles:
    """The outputs folder. Moves are renames, so a file is always whole in exactly one place."""

    persistent = True

    def __init__(self, root: Path):
        self.root = root

    def save(self, data: bytes, recipe: Recipe, user: str | None, index: int | None = None) -> str:
        path = OutputStore(user_folder(self.root, user)).write(data, recipe, index)
        return path.relative_to(self.root).as_posix()

    def keep_beside(self, source: Path, image_path: str) -> str:
        """Copy a file a run made besides its images (a GIF) next to one of them, named after the run: the
        image's name without its place in the run and its id (`<time>-<task>-<seed>.gif`)."""
        image = Path(image_path)
        target = (image.parent / (image.name.rsplit("-", 2)[0] + source.suffix)).as_posix()
        write_whole(self.root / target, source.read_bytes())
        return target

    def file(self, path: str, trashed: bool) -> Path:
        return self.root / TRASH / path if trashed else self.root / path

    def open(self, path: str, trashed: bool) -> BinaryIO:
        return open(self.file(path, trashed), "rb")

    def stat(self, path: str, trashed: bool) -> tuple[float, int]:
        """(modification time, size): the time a result was written, kept by renames and by rebuilds."""
        info = self.file(path, trashed).stat()
        return info.st_mtime, info.st_size

    def walk(self) -> tuple[set[str], set[str]]:
        """The PNGs outside the trash and inside it."""
        return _pngs(self.root), _pngs(self.root / TRASH)

    def move(self, path: str, to_trash: bool) -> None:
        target = self.file(path, to_trash)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.file(path, not to_trash), target)

    def remove(self, path: str, trashed: bool) -> None:
        self.file(path, trashed).unlink(missing_ok=True)
        self.mark(path, False)

    def favourites(self) -> set[str]:
        return _pngs(self.root / FAVOURITES)

    def mark(self, path: str, favourite: bool) -> None:
        marker = self.root / FAVOURITES / path
        if favourite:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def thumb_file(self, image_id: str) -> Path:
        return self.root / THUMBS / f"{image_id}.webp"

    def thumb(self, image_id: str) -> bytes | None:
        try:
            return self.thumb_file(image_id).read_bytes()
        except FileNotFoundError:
            return None

    def keep_thumb(self, image_id: str, data: bytes) -> None:
        write_whole(self.thumb_file(image_id), data)

    def drop_thumb(self, image_id: str) -> None:
        self.thumb_file(image_id).unlink(missing_ok=True)


class MemoryFiles:
    """PNG bytes for one browser session of a public demo: nothing is written to disk."""

    persistent = False

    def __init__(self):
        self._files: dict[tuple[str, bool], tuple[bytes, float]] = {}  # (path, trashed) -> (PNG, created)
        self._thumbs: dict[str, bytes] = {}

    def save(self, data: bytes, recipe: Recipe, user: str | None, index: int | None = None) -> str:
        name = f"{time.strftime('%Y-%m-%d/%H%M%S')}-{file_stem(recipe, index)}.png"
        path = (user_folder("", user) / name).as_posix()
        self._files[path, False] = data, time.time()
        return path

    def keep_beside(self, source: Path, image_path: str) -> None:
        return None  # a session's animations stay where the run made them, served from there

    def file(self, path: str, trashed: bool) -> None:
        return None

    def open(self, path: str, trashed: bool) -> BinaryIO:
        try:
            return io.BytesIO(self._files[path, trashed][0])
        except KeyError:
            raise FileNotFoundError(path) from None

    def stat(self, path: str, trashed: bool) -> tuple[float, int]:
        data, created = self._files[path, trashed]
        return created, len(data)

    def walk(self) -> tuple[set[str], set[str]]:
        keys = list(self._files)  # one copy: other threads may add while this reads
        return {p for p, t in keys if not t}, {p for p, t in keys if t}

    def move(self, path: str, to_trash: bool) -> None:
        self._files[path, to_trash] = self._files.pop((path, not to_trash))

    def remove(self, path: str, trashed: bool) -> None:
        self._files.pop((path, trashed), None)

    def favourites(self) -> set[str]:
        return set()  # kept in the index alone: a session's index is never rebuilt

    def mark(self, path: str, favourite: bool) -> None:
        pass

    def thumb_file(self, image_id: str) -> None:
        return None

    def thumb(self, image_id: str) -> bytes | None:
        return self._thumbs.get(image_id)

    def keep_thumb(self, image_id: str, data: bytes) -> None:
        self._thumbs[image_id] = data

    def drop_thumb(self, image_id: str) -> None:
        self._thumbs.pop(image_id, None)


def _pngs(folder: Path) -> set[str]:
    """Relative paths of the PNGs below `folder`, skipping dot-names: the trash, thumbnails, favourite
    markers and the `.partial-` files a write leaves when it is killed."""
    found: set[str] = set()
    stack = [(str(folder), "")]
    while stack:
        here, prefix = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:  # absent, or removed while walking
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, f"{prefix}{entry.name}/"))
            elif entry.name.lower().endswith(".png"):
                found.add(prefix + entry.name)
    return found
