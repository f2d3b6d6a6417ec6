"""The Library: the index and its rebuild, search that reads any text as words, trash and undo, one person's
images kept from another's, lineage from real recipes, thumbnails made once, and many writers at once."""

import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from pipelines.front.errors import AtelierError, ValidationError
from pipelines.front.library import NO_RECIPE, Library, NoRecipe, NotFound, recipe_differences, step_label, user_folder
from pipelines.front.library.index import INDEX, THUMB_SIZE
from pipelines.front.outputs import OutputStore
from pipelines.front.recipe import Recipe, image_id, png_bytes

ROOT = Path(__file__).resolve().parent.parent


def picture(n: int, size: int = 16) -> Image.Image:
    """A small image whose pixels (and so its id) are its own for each n."""
    return Image.new("RGB", (size, size), (n % 256, n // 256 % 256, 40))


def recipe_for(image: Image.Image, **fields) -> Recipe:
    """A recipe for `image`; fields a Recipe does not have of its own are the task's settings."""
    base = dict(task="txt2img", model="shapes", prompt="a red circle", seed=42, steps=20, guidance_scale=5.0,
                scheduler="Euler a", width=image.width, height=image.height, image_id=image_id(image))
    return Recipe.from_dict({**base, **fields})


def add(library: Library, n: int, user: str | None = None, **fields) -> dict:
    image = picture(n)
    return library.add(image, recipe_for(image, **fields), user)


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*.png") if not any(
        part.startswith(".") for part in p.relative_to(folder).parts)}


def paths(rows: list[dict]) -> set[str]:
    return {row["path"] for row in rows}


@pytest.fixture
def library(tmp_path):
    with Library.open(tmp_path / "outputs") as lib:
        yield lib


def test_importing_the_library_loads_neither_torch_nor_gradio():
    code = "import sys, pipelines.front.library; print('torch' in sys.modules, 'gradio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          check=True).stdout.split() == ["False", "False"]


def test_results_come_back_newest_first_in_pages(library):
    made = [add(library, n, prompt=f"shape number {n}") for n in range(5)]
    rows = library.search(None)
    assert [r["image_id"] for r in rows] == [m["image_id"] for m in reversed(made)]
    assert {"image_id", "prompt", "task", "model", "created", "parent", "label", "path"} <= rows[0].keys()
    assert [r["image_id"] for r in library.search(None, limit=2, offset=1)] == [r["image_id"] for r in rows[1:3]]
    assert library.count(None) == 5
    for limit, offset, refused in ((float("nan"), 0, "limit"), (-1, 0, "limit"), (501, 0, "limit"),
                                   (2, -10, "offset"), (2, 1.5, "offset")):
        with pytest.raises(ValidationError, match=f"^{refused}: .*(whole number|out of range)"):
            library.search(None, limit=limit, offset=offset)  # a page out of range is refused, saying which value
    on_disk = library.get(None, made[0]["image_id"])
    assert on_disk["recipe"]["prompt"] == "shape number 0" and (library._files.root / on_disk["path"]).is_file()


def test_search_by_words_and_filters(library):
    red = add(library, 1, prompt="a red circle at the top left", negative_prompt="blurry")
    blue = add(library, 2, prompt="a blue square née", model="other", task="variations", similarity=0.8)
    library.favourite(None, blue["image_id"])
    assert paths(library.search(None, "red")) == {red["path"]}
    assert paths(library.search(None, "circ top")) == {red["path"]}  # words are prefixes, in any order
    assert paths(library.search(None, "NEE")) == {blue["path"]}  # case and accents do not matter
    assert paths(library.search(None, "blurry", in_negative=True)) == {red["path"]}
    assert library.search(None, "blurry") == []  # the negative prompt is not the prompt
    assert paths(library.search(None, model="other")) == paths(library.search(None, task="variations")) == {blue["path"]}
    assert paths(library.search(None, favourites_only=True)) == {blue["path"]}
    library.favourite(None, blue["image_id"], False)
    assert library.search(None, favourites_only=True) == []
    assert library.choices(None) == {"model": ["other", "shapes"], "task": ["txt2img", "variations"]}


def test_search_by_date(tmp_path):
    store = OutputStore(tmp_path)
    old = store.save(picture(1), recipe_for(picture(1), prompt="old"))
    store.save(picture(2), recipe_for(picture(2), prompt="new"))
    then = time.mktime((2020, 1, 1, 12, 0, 0, 0, 0, -1))
    os.utime(old, (then, then))
    with Library.open(tmp_path) as library:
        assert [r["prompt"] for r in library.search(None, since="2021-01-01")] == ["new"]
        assert [r["prompt"] for r in library.search(None, until="2020-01-01")] == ["old"]  # the whole day
        assert [r["prompt"] for r in library.search(None, since="2019-12-31", until=then + 1)] == ["old"]
        assert library.search(None, until="2020-01-01")[0]["created"].startswith("2020-01-01T12:00:00")


HOSTILE = ['"', '"red', 'red"', "*", "red*", "NEAR(red circle)", "NEAR(", "-red", "red -circle", "AND", "red AND",
           "OR NOT", "'; DROP TABLE images; --", "\"'; DROP TABLE words; --", "prompt:red", "{prompt}: red", "^red",
           "(red", "red)", "🎨", "🎨 red", "", "   ", "\x00", "\ud800", "a" * 10_000, "red " * 500]
FINDS_RED = {'"red', 'red"', "red*", "-red", "red -circle", "(red", "red)", "^red", "🎨 red", "red " * 500}


@pytest.mark.parametrize("query", HOSTILE)
def test_any_query_is_searched_as_words(library, query):
    add(library, 1, prompt="a red circle")
    add(library, 2, prompt="AND NEAR( a drop table, or not")
    rows = library.search(None, query)
    assert isinstance(rows, list) and library.count(None, query) == len(rows)
    assert library.count(None) == 2 and len(library.search(None, "red")) == 1  # the index is whole
    if not query.replace("\x00", " ").strip():
        assert len(rows) == 2  # no words: everything
    if query in FINDS_RED:  # the punctuation around a word is no syntax, and no obstacle
        assert [r["prompt"] for r in rows] == ["a red circle"]


def test_syntax_characters_are_found_as_the_words_they_hold(library):
    add(library, 1, prompt="a red circle")
    logic = add(library, 2, prompt="AND NEAR( a drop table, or not")
    assert paths(library.search(None, "AND")) == {logic["path"]}
    assert paths(library.search(None, "'; DROP TABLE")) == {logic["path"]}
    assert paths(library.search(None, '"red')) == paths(library.search(None, "red*")) != set()
    assert library.search(None, "🎨") == library.search(None, "*") == []  # no word to look for: nothing


def test_a_missing_index_is_rebuilt_with_favourites_trash_and_users(tmp_path):
    with Library.open(tmp_path) as library:
        kept, gone, hers = add(library, 1), add(library, 2), add(library, 3, user="alice")
        library.favourite(None, kept["image_id"])
        library.trash(None, gone["image_id"])
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / (INDEX + suffix)).unlink(missing_ok=True)
    with Library.open(tmp_path) as library:
        assert library.notices == ["Made the library index from 3 PNGs in the outputs folder."]
        assert [(r["image_id"], r["favourite"]) for r in library.search(None)] == [(kept["image_id"], True)]
        assert [r["image_id"] for r in library.search(None, trashed=True)] == [gone["image_id"]]
        assert [r["image_id"] for r in library.search("alice")] == [hers["image_id"]]


def test_a_corrupt_index_is_rebuilt_with_a_notice(tmp_path, caplog):
    with Library.open(tmp_path) as library:
        made = add(library, 1)
    (tmp_path / INDEX).write_bytes(os.urandom(8192))
    with caplog.at_level(logging.WARNING), Library.open(tmp_path) as library:
        assert [r["image_id"] for r in library.search(None)] == [made["image_id"]]
    assert len(library.notices) == 1 and "rebuilt from 1 PNGs" in library.notices[0]
    assert library.notices[0] in caplog.text


def test_an_index_of_another_version_is_rebuilt(tmp_path):
    with Library.open(tmp_path) as library:
        add(library, 1)
        library._db.execute("PRAGMA user_version = 999")
    with Library.open(tmp_path) as library:
        assert library.count(None) == 1 and "another version" in library.notices[0]


def test_pngs_written_before_the_library_existed_are_added_on_open(tmp_path):
    path = OutputStore(tmp_path).save(picture(1), recipe_for(picture(1), prompt="from an earlier version"))
    with Library.open(tmp_path) as library:
        assert library.notices == ["Made the library index from 1 PNGs in the outputs folder."]
    OutputStore(tmp_path).save(picture(2), recipe_for(picture(2)))  # written while the library was closed
    with Library.open(tmp_path) as library:
        assert library.notices == ["Added 1 PNGs the library index lacked."]
        assert library.search(None, "earlier")[0]["path"] == path.relative_to(tmp_path).as_posix()
        assert library.add_file(OutputStore(tmp_path).save(picture(3), recipe_for(picture(3))))["image_id"] == image_id(
            picture(3))
        assert library.count(None) == 3


def test_rows_follow_files_moved_or_removed_behind_its_back(tmp_path):
    with Library.open(tmp_path) as library:
        removed, trashed, liked = add(library, 1), add(library, 2), add(library, 3)
    (tmp_path / removed["path"]).unlink()
    (tmp_path / ".trash" / trashed["path"]).parent.mkdir(parents=True)
    (tmp_path / trashed["path"]).rename(tmp_path / ".trash" / trashed["path"])
    (tmp_path / ".favourites" / liked["path"]).parent.mkdir(parents=True)
    (tmp_path / ".favourites" / liked["path"]).touch()  # as a favourite() killed before its row was written
    with Library.open(tmp_path) as library:
        assert library.notices == ["Dropped 1 entries whose files are gone."]
        assert paths(library.search(None)) == {liked["path"]} and library.search(None)[0]["favourite"]
        assert paths(library.search(None, trashed=True)) == {trashed["path"]}
        with pytest.raises(NotFound):
            library.get(None, removed["image_id"])
    (tmp_path / ".favourites" / liked["path"]).unlink()
    with Library.open(tmp_path) as library:
        assert library.search(None, favourites_only=True) == []


def test_a_damaged_png_is_skipped_with_one_log_line(tmp_path, caplog):
    good = OutputStore(tmp_path).save(picture(1), recipe_for(picture(1)))
    day = good.parent
    (day / "120000-txt2img-1-garbage.png").write_bytes(b"not a png at all")
    data = png_bytes(picture(2, 64), recipe_for(picture(2, 64)))
    (day / "120001-txt2img-2-truncated.png").write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.INFO), Library.open(tmp_path) as library:
        assert paths(library.search(None)) == {good.relative_to(tmp_path).as_posix()}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2 and all("damaged PNG" in w for w in warnings)
    assert any("garbage" in w for w in warnings) and any("truncated" in w for w in warnings)


def test_trash_and_undo(library):
    made = add(library, 1)
    root = library._files.root
    trashed = library.trash(None, made["image_id"])
    assert trashed["trashed"] and library.search(None) == []
    assert not (root / made["path"]).exists() and (root / ".trash" / made["path"]).is_file()
    assert paths(library.search(None, trashed=True)) == {made["path"]}
    assert library.thumbnail(None, made["image_id"])  # a trashed image still shows in the trash
    restored = library.restore(None, made["image_id"])
    assert not restored["trashed"] and (root / made["path"]).is_file() and not (root / ".trash" / made["path"]).exists()
    assert paths(library.search(None)) == {made["path"]}
    library.trash(None, made["image_id"])
    assert library.empty_trash(None) == 1
    assert library.count(None, trashed=True) == 0 and not (root / ".trash" / made["path"]).exists()
    assert not (root / ".thumbs" / f"{made['image_id']}.webp").exists()
    with pytest.raises(NotFound, match="not found"):
        library.restore(None, made["image_id"])


def test_identical_pixels_make_two_files_and_two_rows(library):
    first = add(library, 1, seed=1)
    second = add(library, 1, seed=2)  # the same pixels again: one image id, another file
    assert first["image_id"] == second["image_id"] and first["path"] != second["path"]
    assert library.count(None) == 2 == len(files_in(library._files.root))
    library.trash(None, first["image_id"])
    assert library.count(None) == 0 and library.count(None, trashed=True) == 2


def test_each_person_sees_only_their_own_images(tmp_path):
    with Library.open(tmp_path) as library:
        hers = add(library, 1, user="alice", prompt="alice's red circle")
        add(library, 2, user="bob", prompt="bob's blue square")
        assert (tmp_path / hers["path"]).is_relative_to(tmp_path / "users" / "alice")
        assert paths(library.search("alice")) == {hers["path"]}
        assert library.search("bob", "red") == [] and library.search(None) == []
        other = add(library, 3, user="bob")["image_id"]
        for action in (library.get, library.lineage, library.descendants, library.thumbnail, library.png,
                       library.trash, library.restore, library.favourite, library.file):
            with pytest.raises(NotFound, match=f"{hers['image_id']} not found"):
                action("bob", hers["image_id"])
            with pytest.raises(NotFound):
                action(None, hers["image_id"])
        with pytest.raises(NotFound):
            library.compare("bob", hers["image_id"], other)
        assert library.get("alice", hers["image_id"])["user"] == "alice"


@pytest.mark.parametrize("name", ["../evil", ".hidden", "a/b", "bob smith", "ünïcode 🎨", "%2E", ".."])
def test_every_user_name_keeps_to_its_own_folder_and_comes_back(tmp_path, name):
    folder = user_folder(tmp_path, name)
    assert folder.parent == tmp_path / "users" and not folder.name.startswith(".")
    with Library.open(tmp_path) as library:
        made = add(library, 1, user=name)
    (tmp_path / INDEX).unlink()
    with Library.open(tmp_path) as library:
        assert [r["image_id"] for r in library.search(name)] == [made["image_id"]]
        assert library.search(None) == []


def family(library: Library, store: OutputStore | None = None) -> dict[str, dict]:
    """txt2img → variation → inpaint, each recipe naming its parent, saved as the Studio saves them."""
    t2i_image, var_image, paint_image = picture(1, 32), picture(2, 32), picture(3, 32)
    t2i = recipe_for(t2i_image, seed=42)
    var = recipe_for(var_image, task="variations", seed=7, similarity=0.8, strength=0.35, parent=t2i.image_id)
    paint = recipe_for(paint_image, task="inpaint", seed=9, strength=0.85, mask_hash="m1", parent=var.image_id,
                       extra={"grow": 8}, prompt="a red circle")
    out = {}
    for name, image, recipe in (("t2i", t2i_image, t2i), ("var", var_image, var), ("paint", paint_image, paint)):
        out[name] = library.add_file(store.save(image, recipe)) if store else library.add(image, recipe)
    return out


def test_lineage_of_txt2img_variation_inpaint(tmp_path):
    with Library.open(tmp_path) as library:
        made = family(library, OutputStore(tmp_path))
        chain = library.lineage(None, made["paint"]["image_id"])
    assert [step["image_id"] for step in chain] == [made[k]["image_id"] for k in ("t2i", "var", "paint")]
    assert [step["label"] for step in chain] == ["text to image · seed 42", "variation · similarity 0.8",
                                                 "inpaint · a red circle"]
    assert [step["task"] for step in chain] == ["txt2img", "variations", "inpaint"]
    assert [step["parent"] for step in chain] == [None, chain[0]["image_id"], chain[1]["image_id"]]


def test_a_parent_outside_the_library_ends_the_chain(library):
    image = picture(1)
    made = library.add(image, recipe_for(image, task="variations", similarity=0.5, parent="feedfacefeedface"))
    assert [s["image_id"] for s in library.lineage(None, made["image_id"])] == [made["image_id"]]


def test_descendants_tree(library):
    made = family(library)
    sibling = add(library, 4, task="variations", similarity=0.3, parent=made["t2i"]["image_id"])
    tree = library.descendants(None, made["t2i"]["image_id"])
    assert [c["image_id"] for c in tree["children"]] == [made["var"]["image_id"], sibling["image_id"]]
    assert [c["image_id"] for c in tree["children"][0]["children"]] == [made["paint"]["image_id"]]
    assert tree["children"][1]["children"] == [] and tree["children"][1]["label"] == "variation · similarity 0.3"
    assert library.descendants(None, made["paint"]["image_id"])["children"] == []


def test_compare_lists_the_settings_that_differ(library):
    made = family(library)
    differences = {d["field"]: (d["a"], d["b"]) for d in library.compare(None, made["t2i"]["image_id"],
                                                                         made["paint"]["image_id"])}
    assert differences["task"] == ("txt2img", "inpaint") and differences["seed"] == (42, 9)
    assert differences["strength"] == (None, 0.85) and differences["grow"] == (None, 8)
    assert "prompt" not in differences and "model" not in differences and "image_id" not in differences
    assert library.compare(None, made["t2i"]["image_id"], made["t2i"]["image_id"]) == []


def test_recipes_of_two_versions_compare_by_meaning():
    older = {"task": "variations", "similarity": 0.8, "extra": {"box": [0, 0, 8, 8]}, "versions": {"torch": "2.12"}}
    newer = {"task": "variations", "settings": {"similarity": 0.8, "box": [0, 0, 8, 8]}, "versions": {"torch": "2.13"}}
    assert recipe_differences(older, newer) == [{"field": "versions.torch", "a": "2.12", "b": "2.13"}]


@pytest.mark.parametrize("recipe, label", [
    ({"task": "txt2img", "seed": 12345678901234}, "text to image · seed 12345678901234"),
    ({"task": "variations", "settings": {"similarity": 0.75}}, "variation · similarity 0.75"),
    ({"task": "variations", "strength": 0.3}, "variation · strength 0.3"),
    ({"task": "inpaint", "prompt": ""}, "inpaint"),
    ({"task": "outpaint", "prompt": "a quiet beach at dawn with long shadows and a single red umbrella"},
     "outpaint · a quiet beach at dawn with long shadows…"),
    ({"task": "morph", "position": 0.25, "prompt_b": "a blue square"}, "morph · 0.25 toward a blue square"),
    ({"task": "morph", "settings": {"position": 1.0}}, "morph · frame at 1"),
    ({"task": "upscale", "seed": 3}, "upscale · seed 3"),
    ({"task": "upscale", "seed": 3, "settings": {"scale": 4}}, "upscale ×4 · seed 3"),
    ({"task": "txt2img", "seed": 5, "settings": {"hires": True, "hires_scale": 2}}, "text to image, hires ×2 · seed 5"),
    ({"task": "variations", "settings": {"similarity": 0.7, "upscaled": 4}}, "variation, upscaled ×4 · similarity 0.7"),
])
def test_step_labels_in_plain_words(recipe, label):
    assert step_label(recipe) == label


def test_thumbnails_are_made_once_and_kept(library):
    big = Image.new("RGB", (640, 320), (10, 200, 30))
    made = library.add(big, recipe_for(big))
    cached = library._files.root / ".thumbs" / f"{made['image_id']}.webp"
    assert Image.open(cached).size == (THUMB_SIZE, THUMB_SIZE // 2)  # made with the result
    cached.write_bytes(b"kept")  # were it made again, these bytes would be replaced
    assert library.thumbnail(None, made["image_id"]) == b"kept"
    assert library.thumbnail_file(None, made["image_id"]) == cached
    cached.unlink()  # as for a PNG found in the folder: made from the file at the first call
    first = library.thumbnail(None, made["image_id"])
    assert cached.read_bytes() == first and Image.open(io.BytesIO(first)).size == (THUMB_SIZE, THUMB_SIZE // 2)


def test_a_dropped_png_shows_its_recipe_and_lineage(library):
    made = family(library)
    own = library.inspect(None, library.png(None, made["paint"]["image_id"]))
    assert own["in_library"] and own["label"] == "inpaint · a red circle" and len(own["lineage"]) == 3
    stranger = picture(9)
    foreign = png_bytes(stranger, recipe_for(stranger, task="variations", similarity=0.9,
                                             parent=made["var"]["image_id"]))
    seen = library.inspect(None, foreign)
    assert not seen["in_library"] and seen["recipe"]["settings"]["similarity"] == 0.9
    assert [s["image_id"] for s in seen["lineage"]] == [made["t2i"]["image_id"], made["var"]["image_id"],
                                                         image_id(stranger)]
    assert library.inspect("someone else", foreign)["lineage"][0]["image_id"] == image_id(stranger)
    plain = io.BytesIO()
    Image.new("RGB", (8, 8)).save(plain, "PNG")
    with pytest.raises(NoRecipe, match=NO_RECIPE):
        library.inspect(None, plain.getvalue())
    assert NO_RECIPE == "That image carries no Atelier recipe."
    with pytest.raises(AtelierError, match="could not be read"):
        library.inspect(None, b"\x89PNG not really")


def test_a_session_library_in_memory_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Library.in_memory() as library:
        assert not library.persistent
        made = family(library)
        assert library.lineage(None, made["paint"]["image_id"])[0]["label"] == "text to image · seed 42"
        assert library.search(None, "red") and Image.open(io.BytesIO(library.png(None, made["t2i"]["image_id"])))
        thumb = library.thumbnail(None, made["t2i"]["image_id"])
        assert library.thumbnail(None, made["t2i"]["image_id"]) is thumb and library.thumbnail_file(None, made["t2i"]["image_id"]) is None
        library.trash(None, made["var"]["image_id"])
        assert library.count(None) == 2 and library.restore(None, made["var"]["image_id"])["trashed"] is False
        assert library.search("alice") == [] and library.file(None, made["t2i"]["image_id"]) is None
    assert list(tmp_path.iterdir()) == []


def test_sixteen_threads_adding_at_once_index_every_file_once(library):
    start = threading.Barrier(16)

    def writer(k: int) -> None:
        start.wait()
        for i in range(8):
            add(library, 1000 + k * 8 + i, user="alice" if k % 2 else None, seed=k * 8 + i)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    on_disk = files_in(library._files.root)
    indexed = paths(library.search(None, limit=500)) | paths(library.search("alice", limit=500))
    assert len(on_disk) == 128 and indexed == on_disk


WRITER = """
import sys
from PIL import Image
from pipelines.front.library import Library
from pipelines.front.recipe import Recipe, image_id
library = Library.open(sys.argv[1])
for n in range(100_000):
    image = Image.new("RGB", (32, 32), (n % 256, n // 256 % 256, 99))
    library.add(image, Recipe(task="txt2img", model="shapes", prompt="a killed writer", seed=n, steps=1,
                              guidance_scale=1.0, scheduler="Euler a", width=32, height=32, image_id=image_id(image)))
    if n % 3 == 0:
        library.favourite(None, image_id(image))
    if n % 5 == 0:
        library.trash(None, image_id(image))
    print(n, flush=True)
"""


def test_killed_while_writing_the_index_agrees_with_the_files_after_restart(tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    for _ in range(40):  # let it get well into its loop
        writer.stdout.readline()
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    home = files_in(tmp_path)
    trash = files_in(tmp_path / ".trash")
    with Library.open(tmp_path) as library:
        assert paths(library.search(None, limit=500)) == home
        assert paths(library.search(None, limit=500, trashed=True)) == trash
        assert len(home) + len(trash) >= 40


# -- the studio keeps every result through the library --------------------------------------------------


def canned_studio(outputs=""):
    from pipelines import Registry, Studio
    from tests.helpers import CannedRunner

    return Studio(CannedRunner(), Registry(), outputs=str(outputs) if outputs else "")


def t2i(**fields):
    from pipelines import Txt2ImgRequest

    return Txt2ImgRequest(**{**dict(model="shapes", prompt="a red circle", seed=9, width=64, height=64), **fields})


def test_every_result_of_the_studio_is_saved_and_indexed_with_whose_it_is(tmp_path):
    studio = canned_studio(tmp_path)
    mine = studio.submit(t2i(num_images=2)).result()
    theirs = studio.submit(t2i(prompt="a blue square"), user="ann").result()
    library = studio.library()
    assert [r["image_id"] for r in library.search(None)][::-1] == [r.image_id for r in mine.recipes]
    assert [r["image_id"] for r in library.search("ann")] == [theirs.recipes[0].image_id]
    assert len(files_in(tmp_path)) == 3 and len(files_in(tmp_path / "users" / "ann")) == 1
    assert {r["image_id"] for r in library.search(None, "red")} == {r.image_id for r in mine.recipes}


def test_a_public_demo_keeps_each_sessions_results_in_memory_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    studio = canned_studio()
    made = studio.submit(t2i(), session="one").result()
    assert studio.submit(t2i()).result().images  # work without a session: nothing kept, nothing fails
    assert [r["image_id"] for r in studio.library("one").search(None)] == [made.recipes[0].image_id]
    assert studio.library("two").search(None) == []
    assert not studio.libraries.persistent and not studio.library("one").persistent
    studio.libraries.forget("one")
    assert studio.library("one").search(None) == []  # the session ended: its library went with it
    assert list(tmp_path.iterdir()) == []


def test_sessions_beyond_the_limit_drop_the_least_recently_used(monkeypatch):
    from pipelines.front.library import Libraries

    libraries = Libraries(max_sessions=2)
    first = libraries.of("a")
    libraries.of("b")
    assert libraries.of("a") is first  # used again: now the most recent
    libraries.of("c")
    assert libraries.of("a") is first and libraries.of("b") is not None
    assert len(libraries._sessions) == 2


def test_on_start_pngs_the_index_lacks_are_added_and_a_corrupt_index_is_rebuilt(tmp_path):
    OutputStore(tmp_path).save(picture(1), recipe_for(picture(1), prompt="from an earlier version"))
    studio = canned_studio(tmp_path)
    assert [r["prompt"] for r in studio.library().search(None)] == ["from an earlier version"]
    assert any("1 PNGs" in notice for notice in studio.libraries.notices)
    studio.close()
    (tmp_path / INDEX).write_bytes(b"this is no database" * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"{INDEX}{suffix}").unlink(missing_ok=True)
    again = canned_studio(tmp_path)
    assert [r["prompt"] for r in again.library().search(None)] == ["from an earlier version"]
    assert any("rebuilt" in notice for notice in again.libraries.notices)


def test_morph_frames_are_saved_in_order_with_the_animations_beside_them(tiny_studio, tmp_path):
    from pipelines import MorphRequest, Studio
    from tests.conftest import TINY

    studio = Studio(tiny_studio.runner, tiny_studio.registry, outputs=str(tmp_path))
    request = MorphRequest(model=TINY, prompt="a red circle", prompt_b="a blue circle", num_frames=4, seed=3,
                           steps=2, width=64, height=64, even_pacing=True, scheduler="Euler")
    result = studio.submit(request).result()
    frames = sorted(files_in(tmp_path))
    positions = [Recipe.from_dict(studio.library().get(None, Path(f).stem.rsplit("-", 1)[1])["recipe"]).settings["position"]
                 for f in frames]
    assert len(frames) == 4 and positions == sorted(positions) == [r.settings["position"] for r in result.recipes]
    run = tmp_path / frames[0].rsplit("-", 2)[0]  # <date>/<time>-morph-<seed>
    assert run.with_suffix(".gif").is_file() and run.with_suffix(".mp4").is_file()
    assert Image.open(run.with_suffix(".gif")).n_frames == 4
    assert studio.library().count(None, task="morph") == 4


def test_a_picture_the_library_shows_is_written_once_and_never_rewritten_in_place(tmp_path, monkeypatch):
    """A thumbnail shown again (the gallery refreshes after each result) is the same file, untouched: gradio's
    own save of a PIL image rewrote it in place, and a browser still fetching it got a short read."""
    from ui.tabs.library import served

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "PNG")
    data = buffer.getvalue()
    first = Path(served(data, "abc.png"))
    before = first.stat()
    again = Path(served(data, "abc.png"))
    assert again == first and first.parent.parent == tmp_path and first.read_bytes() == data
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not [p for p in first.parent.iterdir() if p != first]  # no partial file left behind
