"""The index of every result: SQLite beside the PNGs, which stay the truth.

One connection behind one lock serves every thread (bench/library.py measures it against a connection
per thread). WAL lets another process read while this one writes; `synchronous=NORMAL` loses nothing a
killed process wrote, and whatever a power cut loses is read back from the PNGs at the next open.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import AtelierError
from ..fields import as_int
from ..recipe import RECIPE_KEY, Recipe, png_bytes
from ..recipe import image_id as pixel_id
from .labels import match_expression, recipe_differences, setting, step_label
from .store import DiskFiles, MemoryFiles, user_name, user_of

log = logging.getLogger(__name__)

INDEX = "library.sqlite"
SCHEMA_VERSION = 1  # another number in the file: it was made by another version, and is rebuilt
THUMB_SIZE = 256  # longest side of a thumbnail, in pixels
THUMB_QUALITY = 80
MAX_LIMIT = 500  # rows one search returns at most
MAX_TREE = 1000  # images one descendants tree shows at most
NO_RECIPE = "That image carries no Atelier recipe."

SCHEMA = """
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,         -- the file, relative to the outputs folder (its place outside the trash)
    image_id TEXT NOT NULL,            -- content hash of the pixels: what recipes name as parent
    user TEXT NOT NULL,                -- '' for the local single user
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    negative_prompt TEXT NOT NULL,
    parent TEXT,
    created REAL NOT NULL,             -- seconds since the epoch: the file's modification time
    favourite INTEGER NOT NULL DEFAULT 0,
    trashed INTEGER NOT NULL DEFAULT 0,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    seed INTEGER,
    bytes INTEGER NOT NULL,
    recipe TEXT NOT NULL               -- the recipe JSON as the PNG carries it
);
-- Two columns where one would do, so that without statistics the planner prefers these to
-- images_newest for one image and for its children.
CREATE INDEX images_newest ON images (user, trashed, created);
CREATE INDEX images_favourites ON images (user, trashed, created) WHERE favourite = 1;
-- A filter on a rare model or task pages through its own images, not through everyone's; and the
-- filters' choices are read from these indexes alone.
CREATE INDEX images_models ON images (user, model, trashed, created);
CREATE INDEX images_tasks ON images (user, task, trashed, created);
CREATE INDEX images_image_id ON images (image_id, user);
CREATE INDEX images_parent ON images (parent, user);
CREATE VIRTUAL TABLE words USING fts5 (prompt, negative, tokenize = 'unicode61 remove_diacritics 2');
-- A morph frame is found by the words of either end.
CREATE TRIGGER images_words_in AFTER INSERT ON images BEGIN
    INSERT INTO words (rowid, prompt, negative) VALUES (new.id,
        new.prompt || ' ' || coalesce(json_extract(new.recipe, '$.prompt_b'),
                                      json_extract(new.recipe, '$.settings.prompt_b'), ''),
        new.negative_prompt);
END;
CREATE TRIGGER images_words_out AFTER DELETE ON images BEGIN
    DELETE FROM words WHERE rowid = old.id;
END;
"""
COLUMNS = ("path", "image_id", "user", "task", "model", "prompt", "negative_prompt", "parent", "created",
           "favourite", "trashed", "width", "height", "seed", "bytes", "recipe")
CREATED = COLUMNS.index("created")
INSERT = f"INSERT OR IGNORE INTO images ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


class NotFound(AtelierError):
    """No image with that id in this person's library (another person's images are not found either)."""

    def __init__(self, image_id: Any):
        super().__init__(f"Image {str(image_id)[:64]} not found.")


class NoRecipe(AtelierError):
    """A PNG dropped on the Library that Atelier did not make (or whose recipe was stripped)."""

    def __init__(self):
        super().__init__(NO_RECIPE)


class Library:
    """Every result of one outputs folder (or of one browser session), found, traced and compared.

    Every method that reads or changes images takes the person first (`None` or '' for the local single
    user) and sees only that person's images. Results are plain dicts, ready for JSON.
    """

    def __init__(self, files: DiskFiles | MemoryFiles, database: str):
        self._files = files
        self._database = database
        self._lock = threading.RLock()
        self.notices: list[str] = []  # what opening found and did, for the person who runs the server
        self._db: sqlite3.Connection | None = None
        self._open()

    @classmethod
    def open(cls, outputs: str | Path) -> Library:
        """The library of an outputs folder: its index opened (made, or rebuilt when damaged) and brought
        up to date with the files — PNGs it lacks are added, rows whose file is gone are dropped."""
        root = Path(outputs).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(DiskFiles(root), str(root / INDEX))

    @classmethod
    def in_memory(cls) -> Library:
        """A library that writes nothing to disk, for one browser session of a public demo."""
        return cls(MemoryFiles(), ":memory:")

    @property
    def persistent(self) -> bool:
        """False for a session's library in memory: it is gone when the session ends."""
        return self._files.persistent

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- opening and keeping up with the files ----------------------------------------------------------

    def _open(self) -> None:
        try:
            self._db = self._connect()
            made = self._prepare(self._db)
            added, dropped = self.sync()
        except sqlite3.DatabaseError as e:
            # The index is derived data: one that cannot be read is replaced by one read from the PNGs.
            if self._db is not None:
                self._db.close()
            for suffix in ("", "-wal", "-shm"):
                Path(self._database + suffix).unlink(missing_ok=True)
            self._db = self._connect()
            self._prepare(self._db)
            added, _ = self.sync()
            self._notice(logging.WARNING, f"The library index could not be read ({e}); rebuilt from {added} PNGs.")
            return
        if made and added:
            self._notice(logging.INFO, f"Made the library index from {added} PNGs in the outputs folder.")
        elif added:
            self._notice(logging.INFO, f"Added {added} PNGs the library index lacked.")
        if dropped:
            self._notice(logging.INFO, f"Dropped {dropped} entries whose files are gone.")

    @staticmethod
    def _prepare(db: sqlite3.Connection) -> bool:
        """Give a new index its tables (True), or check an existing one is of this version (False)."""
        if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return False
        if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise sqlite3.DatabaseError(f"made by another version of Atelier, not schema {SCHEMA_VERSION}")
        db.executescript(f"{SCHEMA} PRAGMA user_version = {SCHEMA_VERSION};")
        return True

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._database, check_same_thread=False, isolation_level=None, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode = WAL")  # the first statement: garbage in the file fails here
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    def _notice(self, level: int, message: str) -> None:
        log.log(level, message)
        self.notices.append(message)

    def sync(self) -> tuple[int, int]:
        """Make the index agree with the files: (rows added, rows dropped).

        Runs at open. Every change writes the file (or the favourite marker) before the row, so a process
        killed in between leaves a file without a row, or a row whose file moved or went; this puts each
        right. Holds the lock throughout, so nothing moves while it compares.
        """
        with self._lock:
            home, trash = self._files.walk()
            marked = self._files.favourites()
            rows = {p: (t, f) for p, t, f in self._db.execute("SELECT path, trashed, favourite FROM images")}
            gone = {p for p in rows if p not in home and p not in trash}
            kept = [(p, t, f) for p, (t, f) in rows.items() if p not in gone]
            moved = [(int(p not in home), p) for p, t, _ in kept if t != (p not in home)]
            marks = [(int(p in marked), p) for p, _, f in kept if f != (p in marked)]
            fresh = [(p, False) for p in home - rows.keys()] + [(p, True) for p in trash - home - rows.keys()]
            entries = [e for e in (self._read(p, t, p in marked) for p, t in fresh) if e is not None]
            entries.sort(key=lambda e: e[CREATED])  # ids follow the order results were made in
            with self._writing() as db:
                db.executemany("DELETE FROM images WHERE path = ?", [(p,) for p in gone])
                db.executemany("UPDATE images SET trashed = ? WHERE path = ?", moved)
                db.executemany("UPDATE images SET favourite = ? WHERE path = ?", marks)
                db.executemany(INSERT, entries)
        return len(entries), len(gone)

    def _read(self, path: str, trashed: bool, favourite: bool) -> tuple | None:
        """The row for a PNG in the folder, or None (with one log line) when it cannot be listed."""
        try:
            with self._files.open(path, trashed) as f:
                image = Image.open(f)
                text = image.info.get(RECIPE_KEY)
                recipe = json.loads(text) if text else None
                if not isinstance(recipe, dict) or not recipe.get("task"):
                    log.info("Library: %s carries no Atelier recipe; not listed.", path)
                    return None
                size = image.size
                if recipe.get("image_id"):
                    image.verify()  # every chunk is there and whole
                else:
                    recipe["image_id"] = pixel_id(image)  # decodes every pixel, so it checks them too
            created, length = self._files.stat(path, trashed)
        except Exception as e:  # noqa: BLE001 — whatever a damaged file raises, it is skipped, not fatal
            log.warning("Library: skipped %s, a damaged PNG (%s: %s).", path, type(e).__name__, e)
            return None
        return _row_values(path, recipe, created, length, size, favourite=favourite, trashed=trashed)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- adding -----------------------------------------------------------------------------------------

    def add(self, image: Image.Image, recipe: Recipe, user: str | None = None, *, index: int | None = None,
            data: bytes | None = None) -> dict[str, Any]:
        """Save a result in the person's folder (or in memory) and index it; its row as `search` gives it.
        `index`: its place in a run whose images share a seed (a morph's frames), so the files sort in order.
        `data`: its PNG as the front made it (recipe inside, signed); encoded here when not given."""
        if not recipe.image_id:
            recipe = dataclasses.replace(recipe, image_id=pixel_id(image))
        data = png_bytes(image, recipe) if data is None else data  # encoding and writing happen outside the lock
        path = self._files.save(data, recipe, user, index)
        if self._files.thumb(recipe.image_id) is None:  # made now from the pixels at hand, not decoded later
            self._files.keep_thumb(recipe.image_id, _thumb(image))
        created, length = self._files.stat(path, False)
        row = _row_values(path, recipe.to_dict(), created, length, image.size, favourite=False, trashed=False)
        with self._writing() as db:
            db.execute(INSERT, row)
        return self._by_path(path)

    def keep_beside(self, source: str | Path, image_path: str) -> str | None:
        """Keep a file a run made besides its images (Morph's GIF and MP4) next to one of them (a row's
        `path`), under its name with the file's own extension: the relative path, or None in memory."""
        return self._files.keep_beside(Path(source), image_path)

    def add_file(self, path: str | Path) -> dict[str, Any]:
        """Index a PNG something else wrote into the outputs folder (the Studio's OutputStore, say)."""
        if not isinstance(self._files, DiskFiles):
            raise TypeError("A library in memory has no folder to index files from.")
        relative = Path(path).resolve().relative_to(self._files.root).as_posix()
        row = self._read(relative, False, False)
        if row is None:
            raise AtelierError(f"{relative} could not be indexed; see the log.")
        with self._writing() as db:
            db.execute(INSERT, row)
        return self._by_path(relative)

    def _by_path(self, path: str) -> dict[str, Any]:
        with self._lock:
            return _public(self._db.execute("SELECT * FROM images WHERE path = ?", (path,)).fetchone())

    # -- finding ----------------------------------------------------------------------------------------

    def search(
        self,
        user: str | None,
        query: str = "",
        model: str | None = None,
        task: str | None = None,
        favourites_only: bool = False,
        limit: int = 48,
        offset: int = 0,
        *,
        since: str | float | None = None,
        until: str | float | None = None,
        trashed: bool = False,
        in_negative: bool = False,
    ) -> list[dict[str, Any]]:
        """The person's images, newest first, one page of them.

        query: words the prompt holds (each may be the start of a word); `in_negative` looks in the
            negative prompt instead. Anything typed is searched as words, never as syntax.
        model, task: only images of this model / made by this task ("txt2img", "variations", …).
        favourites_only: only favourites. since, until: a date ("2026-11-27", `until` taking the whole
            day), a date and time, or seconds since the epoch. trashed: list the trash instead.
        limit, offset: the page: 1…MAX_LIMIT rows from the offset-th on (a ValidationError outside that).
        Each row: image_id, path, user, task, model, prompt, negative_prompt, parent, created (ISO 8601),
        favourite, trashed, width, height, seed, bytes and label (the operation in plain words).
        """
        where, values = _where(user, query, model, task, favourites_only, since=since, until=until,
                               trashed=trashed, in_negative=in_negative)
        limit, offset = as_int("limit", limit, 1, MAX_LIMIT), as_int("offset", offset, 0, 2**62)
        sql = f"SELECT * FROM images WHERE {where} ORDER BY created DESC, id DESC LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db.execute(sql, [*values, limit, offset]).fetchall()
        return [_public(row) for row in rows]

    def count(self, user: str | None, query: str = "", model: str | None = None, task: str | None = None,
              favourites_only: bool = False, **filters: Any) -> int:
        """How many images `search` finds in all with these filters (and its keyword ones), for a pager."""
        where, values = _where(user, query, model, task, favourites_only, **filters)
        with self._lock:
            return self._db.execute(f"SELECT count(*) FROM images WHERE {where}", values).fetchone()[0]

    def choices(self, user: str | None) -> dict[str, list[str]]:
        """The models and tasks the person's images use: the options of the Library's filters."""
        with self._lock:
            return {
                column: [r[0] for r in self._db.execute(
                    f"SELECT DISTINCT {column} FROM images WHERE user = ? ORDER BY 1", (user_name(user),))]
                for column in ("model", "task")
            }

    def get(self, user: str | None, image_id: str) -> dict[str, Any]:
        """One image's row with its whole recipe (`recipe`, a dict). Raises NotFound."""
        row = self._find(user, image_id)
        return {**_public(row), "recipe": json.loads(row["recipe"])}

    def has(self, user: str | None, image_id: Any) -> bool:
        """Whether the person has a file of this image (in the trash too)."""
        return self._lookup(user, image_id) is not None

    def _find(self, user: str | None, image_id: Any) -> sqlite3.Row:
        row = self._lookup(user, image_id)
        if row is None:
            raise NotFound(image_id)
        return row

    def _lookup(self, user: str | None, image_id: Any) -> sqlite3.Row | None:
        """The person's file of this image (the newest, outside the trash first: identical requests make
        identical pixels, so one image id may have several files)."""
        if not isinstance(image_id, str) or not image_id:
            return None
        with self._lock:
            return self._db.execute(
                "SELECT * FROM images INDEXED BY images_image_id WHERE image_id = ? AND user = ?"
                " ORDER BY trashed, created DESC LIMIT 1",
                (image_id, user_name(user)),
            ).fetchone()

    # -- lineage and comparing --------------------------------------------------------------------------

    def lineage(self, user: str | None, image_id: str) -> list[dict[str, Any]]:
        """The chain from the oldest known ancestor to this image, each step with its operation and key
        setting (`label`). A parent that is not in the library ends the chain. Raises NotFound."""
        chain = [_public(self._find(user, image_id))]
        seen = {chain[0]["image_id"]}
        while (parent := chain[-1]["parent"]) and parent not in seen and (row := self._lookup(user, parent)):
            chain.append(_public(row))
            seen.add(parent)
        return chain[::-1]

    def descendants(self, user: str | None, image_id: str) -> dict[str, Any]:
        """The tree of what was made from this image: its row with `children`, each a row with its own
        `children`, oldest first (at most MAX_TREE images). Raises NotFound."""
        root = {**_public(self._find(user, image_id)), "children": []}
        nodes, level, name = {root["image_id"]: root}, [root], user_name(user)
        while level and len(nodes) < MAX_TREE:
            marks = ", ".join("?" * len(level))
            with self._lock:
                rows = self._db.execute(
                    f"SELECT * FROM images WHERE user = ? AND parent IN ({marks}) ORDER BY created, id",
                    [name, *(node["image_id"] for node in level)],
                ).fetchall()
            level = []
            for row in rows:
                if row["image_id"] in nodes or len(nodes) >= MAX_TREE:
                    continue  # another file of an image already shown, or a cycle
                node = {**_public(row), "children": []}
                nodes[node["image_id"]] = node
                nodes[row["parent"]]["children"].append(node)
                level.append(node)
        return root

    def compare(self, user: str | None, a: str, b: str) -> list[dict[str, Any]]:
        """The recipe settings in which two of the person's images differ: [{field, a, b}]."""
        first, second = self._find(user, a), self._find(user, b)
        return recipe_differences(json.loads(first["recipe"]), json.loads(second["recipe"]))

    def inspect(self, user: str | None, png: bytes | str | Path) -> dict[str, Any]:
        """What a dropped PNG is: {recipe, label, in_library, lineage}. The lineage is the person's known
        ancestors and the image itself. Raises NoRecipe for a PNG without an Atelier recipe."""
        data = png if isinstance(png, bytes) else Path(png).read_bytes()
        try:
            text = Image.open(io.BytesIO(data)).info.get(RECIPE_KEY)
            recipe = json.loads(text) if text else None
        except Exception as e:  # any file at all may be dropped
            raise AtelierError("That file could not be read as an image.") from e
        if not isinstance(recipe, dict) or not recipe.get("task"):
            raise NoRecipe()
        known = self._lookup(user, recipe.get("image_id"))
        if known is not None:
            lineage = self.lineage(user, known["image_id"])
        else:
            parent = self._lookup(user, recipe.get("parent"))
            lineage = [*(self.lineage(user, parent["image_id"]) if parent else []), _facts(recipe)]
        return {"recipe": recipe, "label": step_label(recipe), "in_library": known is not None, "lineage": lineage}

    # -- favourites and the trash -----------------------------------------------------------------------

    def favourite(self, user: str | None, image_id: str, favourite: bool = True) -> dict[str, Any]:
        """Mark (or unmark) an image as a favourite; its row. Raises NotFound."""
        with self._writing() as db:
            for row in self._files_of(user, image_id):
                self._files.mark(row["path"], favourite)
            db.execute("UPDATE images SET favourite = ? WHERE user = ? AND image_id = ?",
                       (int(bool(favourite)), user_name(user), image_id))
        return _public(self._find(user, image_id))

    def trash(self, user: str | None, image_id: str) -> dict[str, Any]:
        """Move an image (every file of it) into the trash; undone by `restore`. Raises NotFound."""
        return self._move(user, image_id, to_trash=True)

    def restore(self, user: str | None, image_id: str) -> dict[str, Any]:
        """Put a trashed image back where it was, file and row. Raises NotFound."""
        return self._move(user, image_id, to_trash=False)

    def _move(self, user: str | None, image_id: str, to_trash: bool) -> dict[str, Any]:
        with self._writing() as db:
            for row in self._files_of(user, image_id):
                if row["trashed"] != to_trash:
                    # The file first: killed between the two, the next open's sync sets the row by the file.
                    self._files.move(row["path"], to_trash)
                    db.execute("UPDATE images SET trashed = ? WHERE id = ?", (int(to_trash), row["id"]))
        return _public(self._find(user, image_id))

    def empty_trash(self, user: str | None) -> int:
        """Delete the person's trashed images for good: how many files went."""
        with self._writing() as db:
            rows = db.execute("SELECT id, path, image_id FROM images WHERE user = ? AND trashed = 1",
                              (user_name(user),)).fetchall()
            for row in rows:
                self._files.remove(row["path"], True)
                db.execute("DELETE FROM images WHERE id = ?", (row["id"],))
            for iid in {row["image_id"] for row in rows}:
                if db.execute("SELECT 1 FROM images WHERE image_id = ?", (iid,)).fetchone() is None:
                    self._files.drop_thumb(iid)
        return len(rows)

    def _files_of(self, user: str | None, image_id: str) -> list[sqlite3.Row]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM images WHERE user = ? AND image_id = ?",
                                    (user_name(user), image_id)).fetchall()
        if not rows:
            raise NotFound(image_id)
        return rows

    # -- pictures ---------------------------------------------------------------------------------------

    def png(self, user: str | None, image_id: str) -> bytes:
        """The image's PNG, recipe inside. Raises NotFound."""
        row = self._find(user, image_id)
        with self._files.open(row["path"], bool(row["trashed"])) as f:
            return f.read()

    def file(self, user: str | None, image_id: str) -> Path | None:
        """Where the image's PNG lies, for a download; None for a library in memory. Raises NotFound."""
        row = self._find(user, image_id)
        return self._files.file(row["path"], bool(row["trashed"]))

    def thumbnail(self, user: str | None, image_id: str) -> bytes:
        """A small WebP of the image (THUMB_SIZE on its longest side), made once (when the image is added, or
        at the first call for PNGs found in the folder) and kept. Raises NotFound."""
        row = self._find(user, image_id)
        cached = self._files.thumb(row["image_id"])
        if cached is not None:
            return cached
        with self._files.open(row["path"], bool(row["trashed"])) as f:
            data = _thumb(Image.open(f))
        self._files.keep_thumb(row["image_id"], data)
        return data

    def thumbnail_file(self, user: str | None, image_id: str) -> Path | None:
        """Where the thumbnail lies (made first if need be), for a gallery; None for a library in memory."""
        self.thumbnail(user, image_id)
        return self._files.thumb_file(image_id)


def _thumb(image: Image.Image) -> bytes:
    small = image.convert("RGB")
    small.thumbnail((THUMB_SIZE, THUMB_SIZE))
    buffer = io.BytesIO()
    small.save(buffer, format="WEBP", quality=THUMB_QUALITY)
    return buffer.getvalue()


def _row_values(path: str, recipe: dict[str, Any], created: float, length: int, size: tuple[int, int], *,
                favourite: bool, trashed: bool) -> tuple:
    """A row of `images` in COLUMNS order, from a recipe and the facts of its file."""
    seed = setting(recipe, "seed")
    return (
        path, str(recipe.get("image_id") or ""), user_of(path), str(recipe.get("task") or ""),
        str(recipe.get("model") or ""), str(recipe.get("prompt") or ""), str(recipe.get("negative_prompt") or ""),
        recipe.get("parent") or None, created, int(favourite), int(trashed), size[0], size[1],
        seed if isinstance(seed, int) else None, length, json.dumps(recipe, ensure_ascii=False),
    )


def _facts(recipe: dict[str, Any]) -> dict[str, Any]:
    """What a recipe says of its image, in the keys of a row."""
    return {
        "image_id": recipe.get("image_id") or "", "task": recipe.get("task"), "model": recipe.get("model"),
        "prompt": recipe.get("prompt") or "", "negative_prompt": recipe.get("negative_prompt") or "",
        "parent": recipe.get("parent") or None, "seed": setting(recipe, "seed"),
        "width": recipe.get("width"), "height": recipe.get("height"), "label": step_label(recipe),
    }


def _public(row: sqlite3.Row) -> dict[str, Any]:
    """A row as plain data: the recipe's facts and the file's."""
    return {
        **_facts(json.loads(row["recipe"])),
        "image_id": row["image_id"], "path": row["path"], "user": row["user"], "width": row["width"],
        "height": row["height"], "created": datetime.fromtimestamp(row["created"]).astimezone().isoformat("T", "seconds"),
        "favourite": bool(row["favourite"]), "trashed": bool(row["trashed"]), "bytes": row["bytes"],
    }


def _where(user: str | None, query: str, model: str | None, task: str | None, favourites_only: bool, *,
           since: str | float | None = None, until: str | float | None = None, trashed: bool = False,
           in_negative: bool = False) -> tuple[str, list]:
    """The WHERE clause of a search, and its values."""
    clauses, values = ["user = ?", "trashed = ?"], [user_name(user), int(bool(trashed))]
    match = match_expression(query or "", "negative" if in_negative else "prompt")
    if match is not None:
        clauses.append("id IN (SELECT rowid FROM words WHERE words MATCH ?)")
        values.append(match)
    for column, value in (("model", model), ("task", task)):
        if value:
            clauses.append(f"{column} = ?")
            values.append(str(value))
    if favourites_only:
        clauses.append("favourite = 1")
    for operator, moment in ((">=", _moment(since, end=False)), ("<", _moment(until, end=True))):
        if moment is not None:
            clauses.append(f"created {operator} ?")
            values.append(moment)
    return " AND ".join(clauses), values


def _moment(value: str | float | None, end: bool) -> float | None:
    """Seconds since the epoch from a date, date and time, or number; a bare date as `until` takes the
    whole day. An unreadable value is no bound."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    if end and len(str(value).strip()) == 10:  # "YYYY-MM-DD": through the end of that day
        moment += timedelta(days=1)
    return moment.timestamp()
