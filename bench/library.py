"""The Library at scale: search, a page of thumbnails, start-up, rebuild and many writers at once.

    flock /tmp/atelier-heavy.lock python bench/library.py --out bench/results/library.json   # the full run
    python bench/library.py --entries 5000 --pngs 300 --rebuild 500                             # a quick look

Most of the entries go straight into the index, as a rebuild would write them, each with an empty file in
its place so that the open-time comparison with the folder walks as many files as a real library has; a
few thousand are real PNGs made through `Library.add`, the newest, so the first pages of the gallery have
real thumbnails. Prints each figure beside its target.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from pipelines.front.library import Library  # noqa: E402
from pipelines.front.library.index import INDEX, INSERT, _row_values  # noqa: E402 — rows straight in, as a rebuild writes them
from pipelines.front.library.store import FAVOURITES, THUMBS  # noqa: E402
from pipelines.front.outputs import OutputStore  # noqa: E402
from pipelines.front.recipe import Recipe, image_id  # noqa: E402

COLOURS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "grey"]
SHAPES = ["circle", "square", "triangle", "star", "heart", "hexagon", "cross", "ring"]
PLACES = ["at the top left", "at the top right", "in the centre", "at the bottom left", "at the bottom right"]
TASKS = ["txt2img"] * 10 + ["variations"] * 5 + ["inpaint"] * 3 + ["outpaint", "morph"]
MODELS = ["shapes", "sd15", "sdxl", "turbo"]
RARE = "a-rare-model"  # on about 50 of 100,000 images: a filter that matches almost nothing
PAGE = 48


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    """Made-up words, so prompts hold rare terms as well as common ones, as real prompts do."""
    syllables = ["ka", "lo", "mi", "ra", "ven", "tor", "sil", "bra", "nu", "qe", "dai", "fen", "gol", "pri", "zu"]
    return sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(size)})


def prompt(rng: random.Random, words: list[str]) -> str:
    text = f"a {rng.choice(['small', 'large'])} {rng.choice(COLOURS)} {rng.choice(SHAPES)} {rng.choice(PLACES)}"
    return " ".join([text, *rng.sample(words, rng.randint(0, 4))])


def recipe(image: Image.Image, rng: random.Random, words: list[str], **fields) -> Recipe:
    return Recipe(**{**dict(task="txt2img", model="shapes", prompt=prompt(rng, words), negative_prompt="blurry",
                            seed=rng.randrange(2**32), steps=20, guidance_scale=5.0, scheduler="Euler a",
                            width=image.width, height=image.height, image_id=image_id(image)), **fields})


def picture(n: int, size: int = 64) -> Image.Image:
    """Pixels of its own for each n, with some detail, so PNGs and thumbnails cost what small results do."""
    image = Image.effect_noise((size, size), 40 + n % 50).convert("RGB")
    image.putpixel((0, 0), (n % 256, n // 256 % 256, n // 65536 % 256))
    return image


def synthetic(library: Library, root: Path, count: int, rng: random.Random, words: list[str]) -> None:
    """`count` rows over the past year, each with an empty file where its PNG would be (and a marker
    where it is a favourite)."""
    template = recipe(Image.new("RGB", (512, 512)), rng, words).to_dict()
    start = time.time() - 365 * 86400
    ids: list[str] = []
    rows = []
    for n in range(count):
        created = start + n * (360 * 86400 / count)
        iid = f"{n:016x}"
        task = rng.choice(TASKS)
        trashed = rng.random() < 0.02
        model = RARE if rng.random() < 0.0005 else rng.choice(MODELS)
        fields = dict(task=task, model=model, prompt=prompt(rng, words), seed=rng.randrange(2**32),
                      image_id=iid, parent=rng.choice(ids) if ids and task != "txt2img" else None)
        if task == "variations":
            fields["similarity"] = round(rng.random(), 2)
        path = f"{time.strftime('%Y-%m-%d', time.localtime(created))}/{time.strftime('%H%M%S', time.localtime(created))}" \
               f"-{task}-{fields['seed']}-{iid}.png"
        place = root / ".trash" / path if trashed else root / path
        favourite = rng.random() < 0.03
        for file in (place, root / FAVOURITES / path) if favourite else (place,):
            file.parent.mkdir(parents=True, exist_ok=True)
            file.touch()
        rows.append(_row_values(path, {**template, **fields}, created, 300_000, (512, 512),
                                favourite=favourite, trashed=trashed))
        ids.append(iid)
    with library._writing() as db:
        db.executemany(INSERT, rows)


def count_nodes(tree: dict) -> int:
    return 1 + sum(count_nodes(child) for child in tree["children"])


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(1000 * statistics.median(ordered), 2),
            "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 2),
            "max_ms": round(1000 * ordered[-1], 2), "n": len(ordered)}


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def searches(library: Library, rng: random.Random, words: list[str], total: int) -> dict[str, dict]:
    """Timings by kind of search: words alone, with filters, pages deep in the library, counts."""
    kinds = {
        "newest page": lambda: library.search(None, limit=PAGE),
        "one common word": lambda: library.search(None, rng.choice(COLOURS), limit=PAGE),
        "two words": lambda: library.search(None, f"{rng.choice(COLOURS)} {rng.choice(SHAPES)}", limit=PAGE),
        "rare word": lambda: library.search(None, rng.choice(words), limit=PAGE),
        "prefix": lambda: library.search(None, rng.choice(words)[:3], limit=PAGE),
        "word + model + task": lambda: library.search(None, rng.choice(SHAPES), model=rng.choice(MODELS),
                                                      task=rng.choice(TASKS), limit=PAGE),
        "a rare model": lambda: library.search(None, model=RARE, limit=PAGE),
        "favourites": lambda: library.search(None, favourites_only=True, limit=PAGE),
        "date range": lambda: library.search(None, since=time.time() - rng.randint(30, 300) * 86400,
                                             until=time.time() - rng.randint(0, 29) * 86400, limit=PAGE),
        "hostile text": lambda: library.search(None, rng.choice(['"red', "NEAR(", "'; DROP TABLE", "-circle *"])),
        "deep page (offset ≥ 50,000)": lambda: library.search(None, limit=PAGE, offset=rng.randint(50_000, 95_000)),
        "word, deep page": lambda: library.search(None, rng.choice(COLOURS), limit=PAGE, offset=rng.randint(1000, 9000)),
        "count for a word": lambda: library.count(None, rng.choice(COLOURS)),
    }
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    order = [kind for kind in kinds for _ in range(total // len(kinds))]
    rng.shuffle(order)
    for kind in order:
        times[kind].append(timed(kinds[kind]))
    every = [t for kind, ts in times.items() if kind != "count for a word" for t in ts]
    return {"all searches": percentiles(every), **{kind: percentiles(ts) for kind, ts in times.items()}}


def thumbnail_pages(library: Library, root: Path, pages: int) -> dict[str, dict]:
    """Server time for a page of the gallery: one search and its 48 thumbnail files, cold then cached."""
    def page(k: int) -> None:
        for row in library.search(None, limit=PAGE, offset=k * PAGE):
            library.thumbnail_file(None, row["image_id"])

    shutil.rmtree(root / THUMBS)  # as for PNGs from before the library: thumbnails made at the first view
    cold = [timed(lambda k=k: page(k)) for k in range(pages)]
    warm = [timed(lambda k=k: page(k)) for k in range(pages) for _ in range(3)]
    return {"first view (thumbnails made)": percentiles(cold), "cached": percentiles(warm)}


def writers(folder: Path, threads: int, each: int, shared: bool, words: list[str]) -> dict:
    """`threads` threads adding at once, through one library (one connection and its lock) or a library
    each (a connection per thread): seconds, and whether every file has exactly one row."""
    folder.mkdir()
    libraries = [Library.open(folder)] * threads if shared else [Library.open(folder) for _ in range(threads)]
    gate = threading.Barrier(threads + 1)
    rngs = [random.Random(k) for k in range(threads)]

    def work(k: int) -> None:
        gate.wait()
        for i in range(each):
            image = picture(10_000_000 + k * each + i)
            libraries[k].add(image, recipe(image, rngs[k], words), None if k % 2 else f"user{k}")

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    gate.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - start
    for library in set(libraries):
        library.close()
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*.png") if ".trash" not in p.parts}
    with Library.open(folder) as check:
        rows = [r[0] for r in check._db.execute("SELECT path FROM images")]
        resynced = check.notices
    return {"seconds": round(seconds, 2), "images_per_second": round(threads * each / seconds, 1),
            "files": len(files), "rows": len(rows), "rows_equal_files": sorted(rows) == sorted(files),
            "reopen_found_to_fix": resynced}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entries", type=int, default=100_000, help="entries in the big library, PNGs included")
    p.add_argument("--pngs", type=int, default=3000, help="of them, real PNGs (the newest)")
    p.add_argument("--rebuild", type=int, default=10_000, help="PNGs to rebuild an index from")
    p.add_argument("--queries", type=int, default=600)
    p.add_argument("--writers", type=int, default=16)
    p.add_argument("--each", type=int, default=25, help="images each writer adds")
    p.add_argument("--dir", type=Path, default=None, help="where to build the libraries (a temporary folder)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    rng = random.Random(0)
    words = vocabulary(rng)
    work = Path(tempfile.mkdtemp(prefix="atelier-library-", dir=args.dir))
    figures: dict = {"entries": args.entries, "real_pngs": args.pngs}
    try:
        big = work / "big"
        with Library.open(big) as library:
            start = time.perf_counter()
            synthetic(library, big, args.entries - args.pngs, rng, words)
            figures["fill_synthetic_s"] = round(time.perf_counter() - start, 1)
            start = time.perf_counter()
            for n in range(args.pngs):
                image = picture(n)
                library.add(image, recipe(image, rng, words))
            figures["add_png_ms_each"] = round(1000 * (time.perf_counter() - start) / max(args.pngs, 1), 2)
        print(f"library of {args.entries:,} entries built", flush=True)

        opens = []
        for _ in range(5):
            start = time.perf_counter()
            library = Library.open(big)
            opens.append(time.perf_counter() - start)
            library.close()
        figures["open"] = percentiles(opens)
        figures["index_mb"] = round((big / INDEX).stat().st_size / 2**20, 1)

        with Library.open(big) as library:
            assert library.count(None) + library.count(None, trashed=True) == args.entries
            assert library.notices == [], library.notices  # the folder and the index agree
            figures["search"] = searches(library, rng, words, args.queries)
            figures["page_of_48_thumbnails"] = thumbnail_pages(library, big, min(10, args.pngs // PAGE))
            chain_id = library.search(None, task="inpaint", limit=1)[0]["image_id"]
            figures["lineage_ms"] = round(1000 * timed(lambda: library.lineage(None, chain_id)), 2)
            figures["lineage_steps"] = len(library.lineage(None, chain_id))
            oldest = library.search(None, limit=1, offset=library.count(None) - 1)[0]["image_id"]
            figures["descendants_ms"] = round(1000 * timed(lambda: library.descendants(None, oldest)), 1)
            figures["descendants_nodes"] = count_nodes(library.descendants(None, oldest))
            figures["filter_choices_ms"] = round(1000 * timed(lambda: library.choices(None)), 1)
        print("searches timed", flush=True)

        flat = work / "rebuild"
        store = OutputStore(flat)
        for n in range(args.rebuild):
            image = picture(20_000_000 + n)
            store.save(image, recipe(image, rng, words))
        start = time.perf_counter()
        with Library.open(flat) as library:
            figures["rebuild"] = {"pngs": args.rebuild, "seconds": round(time.perf_counter() - start, 2),
                                  "rows": library.count(None), "notice": library.notices}
        print("rebuild timed", flush=True)

        figures["writers"] = {
            "one connection + lock": writers(work / "shared", args.writers, args.each, True, words),
            "a connection per thread": writers(work / "separate", args.writers, args.each, False, words),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report(figures)
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2, ensure_ascii=False))


def report(f: dict) -> None:
    print(f"\n{'figure':<48} {'measured':>22}   target")
    s = f["search"]
    lines = [
        ("search p95, all kinds", f"{s['all searches']['p95_ms']} ms", "≤ 100 ms"),
        *[(f"  {kind} p95", f"{v['p95_ms']} ms", "") for kind, v in s.items() if kind != "all searches"],
        ("page of 48 thumbnails p95, cached", f"{f['page_of_48_thumbnails']['cached']['p95_ms']} ms", "≤ 300 ms"),
        ("  first view, thumbnails made, p95",
         f"{f['page_of_48_thumbnails']['first view (thumbnails made)']['p95_ms']} ms", ""),
        ("open (start-up) max of 5", f"{f['open']['max_ms']} ms", "≤ 1000 ms"),
        (f"rebuild from {f['rebuild']['pngs']:,} PNGs", f"{f['rebuild']['seconds']} s, {f['rebuild']['rows']:,} rows",
         "timed"),
        (f"lineage of an inpaint ({f['lineage_steps']} steps)", f"{f['lineage_ms']} ms", ""),
        (f"descendants of the oldest image ({f['descendants_nodes']} nodes)", f"{f['descendants_ms']} ms", ""),
        ("models and tasks for the filters", f"{f['filter_choices_ms']} ms", ""),
        ("index size", f"{f['index_mb']} MB", ""),
    ]
    for name, w in f["writers"].items():
        lines.append((f"writers, {name}", f"{w['seconds']} s, {w['images_per_second']}/s", ""))
        lines.append((f"  rows = files ({w['files']} files)", str(w["rows_equal_files"]), "True"))
    for name, measured, target in lines:
        print(f"{name:<48} {measured:>22}   {target}")


if __name__ == "__main__":
    main()
