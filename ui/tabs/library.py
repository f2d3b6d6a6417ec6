"""Library: every result kept, newest first — found by the words of its prompt, traced to where it came
from, compared, restored into the tab that made it, sent on to another.

Not a task: the page adds this tab after the tasks' and hands it the other tabs, for "Send to" and for
restoring settings. Each person sees only their own images (another's id answers "not found"); in a
public demo the library lives in memory for the browser session, and says so.
"""

from __future__ import annotations

import html
import io
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from pipelines import (
    AtelierError,
    Library,
    NoRecipe,
    NotFound,
    Recipe,
    Studio,
    ValidationError,
    describe_credentials,
    recipe_differences,
    step_label,
)

from ..events import Tab, owner
from ..messages import said, slip
from ..restore import recipe_updates
from ..results import served

TITLE = "Library"
PAGE = 48  # thumbnails a page
PERIODS = {"Any time": None, "Today": 0, "Last 7 days": 7, "Last 30 days": 30}  # days back to midnight
ANY = "Any"
NOTHING_PICKED = "Pick an image in the library first."
API_FIELDS = ("image_id", "prompt", "negative_prompt", "task", "model", "created", "parent", "label", "seed",
              "width", "height", "favourite")  # what the HTTP API tells of an image (no paths, no users)


@dataclass
class LibraryTab:
    """What the page needs of the Library: the event that shows the newest results again."""

    refresh: Any  # (request, **filters) -> updates of `refresh_outputs`
    refresh_inputs: list
    refresh_outputs: list


def shelf(studio: Studio, request: gr.Request | None) -> tuple[Library, str | None]:
    """The person's library and name: the outputs folder's, or the browser session's own in memory."""
    who = owner(request)
    library = studio.library(who["session"])
    if library is None:
        raise gr.Error("This server keeps no library.", print_exception=False)
    return library, who["user"]


def since(period: str) -> float | None:
    days = PERIODS.get(period)
    if days is None:
        return None
    today = time.mktime(time.localtime()[:3] + (0, 0, 0, 0, 0, -1))
    return today - days * 86400


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def thumbs(library: Library, user: str | None, rows: list[dict]) -> list[tuple[str, str]]:
    return [(thumb(library, user, row["image_id"]), row["label"]) for row in rows]


def thumb(library: Library, user: str | None, image_id: str) -> str:
    return served(library.thumbnail(user, image_id), f"{image_id}.webp")


def escape(text: Any) -> str:
    """Text shown as itself in Markdown: no markup, no links, no HTML."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~])", r"\\\1", str(text))


def page_words(tabs: dict[str, Tab]) -> dict[str, dict[str, str]]:
    """Each task's settings by the labels its tab shows them with, without their explanations in
    parentheses ("Strength (how much the area changes)" → "Strength"); Outpaint's are Inpaint's."""
    words = {name: {field: re.sub(r"\s*\(.*?\)", "", component.label) for field, component in tab.controls.fields.items()
                    if getattr(component, "label", None)} for name, tab in tabs.items()}
    return {**words, "outpaint": words.get("inpaint", {})}


def setting_words(name: str, value: Any, labels: dict[str, str]) -> str:
    shown = "yes" if value is True else "no" if value is False else value
    return f"{escape(labels.get(name, name.replace('_', ' ')))} {escape(shown)}"


def plain_words(entry: dict, labels: dict[str, str] | None = None) -> str:
    """A recipe in plain words, for the details pane: its settings named as the task's tab names them
    (`labels`), yes/no for switches, no machine facts (a mask's hash)."""
    labels = labels or {}
    recipe = entry["recipe"]
    settings = {**(recipe.get("extra") or {}), **(recipe.get("settings") or {})}
    lines = [
        f"**{escape(step_label(recipe))}** · {escape(recipe.get('model'))} · {escape(entry['created'][:16].replace('T', ' '))}",
        f"- Prompt: {escape(recipe.get('prompt') or '—')}",
    ]
    if recipe.get("negative_prompt"):
        lines.append(f"- Avoiding: {escape(recipe['negative_prompt'])}")
    lines.append(
        f"- Seed {recipe.get('seed')} · {recipe.get('steps')} steps · guidance {recipe.get('guidance_scale')} · "
        f"{escape(recipe.get('scheduler'))} · {entry['width']}×{entry['height']}"
    )
    own = ", ".join(setting_words(k, v, labels) for k, v in settings.items()
                    if not isinstance(v, (dict, list)) and not k.endswith("_hash"))
    if own:
        lines.append(f"- Settings: {own}")
    lines.append(f"- Image id `{entry['image_id']}`" + (f", made from `{entry['parent']}`" if entry.get("parent") else ""))
    return "\n".join(lines)


def credentials_words(studio: Studio, library: Library, user: str | None, data: bytes) -> str:
    """A file's Content Credentials in plain words, for the details pane: valid? trusted? AI-made? edited
    from what (and whether that is in the person's library)? changed since it was signed?"""
    found = studio.read_credentials(data)
    known = set()
    for ingredient in found.get("ingredients", []):
        try:
            known.add(library.get(user, ingredient["image_id"])["image_id"])
        except NotFound:
            pass
    lines = describe_credentials(found, in_library=known)
    return "\n\n**Content Credentials**\n" + "\n".join(f"- {escape(line)}" for line in lines)


def differences_table(first: dict, second: dict) -> str:
    """Every setting of two recipes side by side, those that differ highlighted."""
    differ = {d["field"] for d in recipe_differences(first["recipe"], second["recipe"])}
    rows = []
    for field in dict.fromkeys([*_flat(first["recipe"]), *_flat(second["recipe"])]):
        a, b = _flat(first["recipe"]).get(field, "—"), _flat(second["recipe"]).get(field, "—")
        mark = ' class="differs"' if field in differ else ""
        rows.append(f"<tr{mark}><th>{html.escape(field)}</th><td>{html.escape(str(a))}</td><td>{html.escape(str(b))}</td></tr>")
    head = f"<tr><th>setting</th><th>A · {html.escape(first['label'])}</th><th>B · {html.escape(second['label'])}</th></tr>"
    count = f"<p>{len(differ)} setting{'s' * (len(differ) != 1)} differ.</p>"
    return f'{count}<table class="library-compare">{head}{"".join(rows)}</table>'


def _flat(recipe: dict) -> dict:
    flat = {k: v for k, v in recipe.items() if k not in ("settings", "extra", "versions", "notices", "image_id")}
    flat.update({k: v for place in ("extra", "settings") for k, v in (recipe.get(place) or {}).items()})
    return {k: v for k, v in flat.items() if v is not None and not isinstance(v, (dict, list))}


def tree_items(node: dict, depth: int = 0) -> list[tuple[dict, int]]:
    """A descendants tree flattened, oldest first, each with its depth (the image itself not included)."""
    out = []
    for child in node["children"]:
        out.append((child, depth))
        out.extend(tree_items(child, depth + 1))
    return out


def render(studio: Studio, picker: gr.Dropdown, tabs: dict[str, Tab], switcher: gr.Tabs) -> LibraryTab:
    panes = _layout(studio)
    refresh, shown, inputs = _wire_gallery(studio, panes)
    details, details_out = _wire_details(studio, panes, page_words(tabs))
    _wire_actions(studio, panes, refresh, details, details_out, shown, inputs)
    _wire_restore_and_send(studio, picker, tabs, switcher, panes.restore, panes.send_row, panes.current)
    _api(studio)
    return LibraryTab(_typed(refresh), [panes.page, *inputs], shown)


@dataclass
class Panes:
    """The Library tab's components, by name, for the functions that wire them."""

    page: Any
    ids: Any
    current: Any
    walk: Any
    marked: Any
    trashed: Any
    query: Any
    task: Any
    model: Any
    period: Any
    favourites: Any
    gallery: Any
    previous: Any
    pager: Any
    following: Any
    opened: Any
    large: Any
    words: Any
    restore: Any
    favourite: Any
    delete: Any
    undo: Any
    download: Any
    send_row: Any
    lineage: Any
    children: Any
    mark: Any
    compare: Any
    comparing: Any
    slider: Any
    differing: Any


def _layout(studio: Studio) -> Panes:
    """The tab's components: the filters, the grid and its pages, the details pane, Compare."""
    where = ("Kept in the outputs folder; every result appears here as it is made." if studio.libraries.persistent
             else "Kept in memory for this browser session only: nothing is saved on the server, and it is gone "
                  "when you close or reload the page. Download what you want to keep.")
    notices = " ".join(studio.libraries.notices)  # an index rebuilt from the PNGs, PNGs of earlier versions added
    gr.Markdown(f"{where} {escape(studio.signer)} {escape(notices)}".strip(), elem_classes="hint",
                elem_id="library-where")
    page, ids, current = gr.State(0), gr.State([]), gr.State(None)
    walk, marked, trashed = gr.State([]), gr.State(None), gr.State(None)
    with gr.Row(equal_height=True):
        query = gr.Textbox(label="Search the prompts", placeholder="red circle", max_length=500, scale=3,
                           min_width=200, elem_id="library-search")
        task = gr.Dropdown([ANY], value=ANY, label="Operation", scale=1, min_width=140)
        model = gr.Dropdown([ANY], value=ANY, label="Model", scale=1, min_width=140)
        period = gr.Dropdown(list(PERIODS), value="Any time", label="Date", scale=1, min_width=140)
        favourites = gr.Checkbox(False, label="Favourites only", scale=0, min_width=140)
    with gr.Row(equal_height=False):
        with gr.Column(scale=6, min_width=320):
            gallery = gr.Gallery(label="Newest first", show_label=False, columns=6, height="auto", object_fit="cover",
                                 allow_preview=False, buttons=[], interactive=False, elem_id="library-gallery")
            with gr.Row(equal_height=True):
                previous = gr.Button("‹ Newer", size="sm", min_width=80)
                pager = gr.Markdown("", elem_id="library-pager")
                following = gr.Button("Older ›", size="sm", min_width=80)
            opened = gr.File(label="Open a PNG or JPEG: its recipe, lineage and Content Credentials",
                             file_types=[".png", ".jpg", ".jpeg"], type="filepath", height=120,
                             elem_id="library-open")
        with gr.Column(scale=5, min_width=320):
            large = gr.Image(label="Selected", format="png", interactive=False, height=360,
                             buttons=["fullscreen"], elem_id="library-image", elem_classes="source-image")
            words = gr.Markdown("Pick an image to see its recipe and where it came from.", elem_id="library-recipe")
            with gr.Row():
                restore = gr.Button("Restore settings", size="sm", variant="primary", elem_id="library-restore")
                favourite = gr.Button("☆ Favourite", size="sm", elem_id="library-favourite")
                delete = gr.Button("Delete", size="sm", variant="stop", elem_id="library-delete")
                undo = gr.Button("Undo delete", size="sm", visible=False, elem_id="library-undo")
                download = gr.DownloadButton("Download PNG", size="sm", elem_id="library-download")
            send_row = gr.Row()
            lineage = gr.Gallery(label="Where it came from (oldest first)", columns=4, height="auto",
                                 allow_preview=False, buttons=[], interactive=False, elem_id="library-lineage")
            children = gr.Gallery(label="Made from it", columns=4, height="auto", allow_preview=False, buttons=[],
                                  interactive=False, elem_id="library-children")
            with gr.Row():
                mark = gr.Button("Compare: pick as A", size="sm", elem_id="library-mark")
                compare = gr.Button("Compare A with this", size="sm", elem_id="library-compare")
    with gr.Accordion("Compare", open=False, visible=False) as comparing:
        slider = gr.ImageSlider(label="A ◂ drag ▸ B", format="png", type="pil", interactive=False, height=420,
                                elem_id="library-slider")
        differing = gr.HTML(elem_id="library-differences")
    return Panes(
        page=page, ids=ids, current=current, walk=walk, marked=marked, trashed=trashed,
        query=query, task=task, model=model, period=period, favourites=favourites, gallery=gallery,
        previous=previous, pager=pager, following=following, opened=opened, large=large, words=words,
        restore=restore, favourite=favourite, delete=delete, undo=undo, download=download, send_row=send_row,
        lineage=lineage, children=children, mark=mark, compare=compare, comparing=comparing, slider=slider,
        differing=differing,
    )


def _wire_gallery(studio: Studio, panes: Panes):
    """The grid: the filters and pages list the person's images, newest first. Returns what lists them again
    (for the actions and the page's refresh), its outputs and its inputs."""
    page, ids, query, task = panes.page, panes.ids, panes.query, panes.task
    model, period, favourites, gallery = panes.model, panes.period, panes.favourites, panes.gallery
    previous, pager, following = panes.previous, panes.pager, panes.following

    def listing(request: gr.Request, text, operation, maker, when, only_favourites, number=0):
        library, user = shelf(studio, request)
        search = dict(query=text or "", model=None if maker in (None, ANY) else maker,
                      task=None if operation in (None, ANY) else operation, favourites_only=bool(only_favourites),
                      since=since(when))
        total = library.count(user, **search)
        pages = max(1, -(-total // PAGE))
        number = min(max(int(number or 0), 0), pages - 1)
        rows = library.search(user, **search, limit=PAGE, offset=number * PAGE)
        options = library.choices(user)
        told = f"{total} image{'s' * (total != 1)} · page {number + 1} of {pages}" if total else "No images yet."
        return {
            gallery: thumbs(library, user, rows), ids: [r["image_id"] for r in rows], page: number, pager: told,
            task: gr.Dropdown([ANY, *((step_label({"task": t}), t) for t in options["task"])],
                              value=operation if operation in options["task"] else ANY),
            model: gr.Dropdown([ANY, *options["model"]], value=maker if maker in options["model"] else ANY),
        }

    shown = [gallery, ids, page, pager, task, model]
    inputs = [query, task, model, period, favourites]
    for trigger in (query.submit, task.input, model.input, period.input, favourites.input):
        trigger(listing, inputs, shown, api_visibility="private", queue=False)
    turn = lambda step: lambda request, number, *values: listing(request, *values, number=number + step)  # noqa: E731
    previous.click(_typed(turn(-1)), [page, *inputs], shown, api_visibility="private", queue=False)
    following.click(_typed(turn(1)), [page, *inputs], shown, api_visibility="private", queue=False)
    refresh = lambda request, number, *values: listing(request, *values, number=number)  # noqa: E731
    return refresh, shown, inputs


def _wire_details(studio: Studio, panes: Panes, words_of: dict):
    """The details pane: a picked image (or a dropped file) in plain words, its lineage and what was made
    from it, each a step to walk. Returns the details (for the actions) and their outputs."""
    ids, current, walk, gallery = panes.ids, panes.current, panes.walk, panes.gallery
    opened, large, words, favourite = panes.opened, panes.large, panes.words, panes.favourite
    download, lineage, children = panes.download, panes.lineage, panes.children
    details_out = [current, large, words, lineage, children, walk, favourite, download]

    def details(request: gr.Request, image_id: str | None, dropped: bytes | None = None) -> dict:
        """The image's details; `dropped`: a file given for it, whose own credentials are read (a copy may
        have been changed since it was signed)."""
        library, user = shelf(studio, request)
        try:
            entry = library.get(user, image_id)
        except NotFound as e:
            return slip(str(e), details_out)
        chain = library.lineage(user, image_id)
        tree = tree_items(library.descendants(user, image_id))
        png = library.png(user, image_id)
        return {
            current: image_id, large: served(png, f"{image_id}.png"),
            words: plain_words(entry, words_of.get(entry["recipe"].get("task")))
            + credentials_words(studio, library, user, dropped or png),
            lineage: thumbs(library, user, chain),
            children: [(thumb(library, user, n["image_id"]), "↳" * (d + 1) + " " + n["label"])
                       for n, d in tree],
            walk: [[r["image_id"] for r in chain], [n["image_id"] for n, _ in tree]],
            favourite: gr.Button("★ Favourite" if entry["favourite"] else "☆ Favourite"),
            download: studio.download(library, user, image_id),
        }

    def pick(request: gr.Request, evt: gr.SelectData, listed: list[str]):
        return details(request, listed[evt.index]) if evt.index < len(listed) else {}

    def step(which: int):
        def choose(request: gr.Request, evt: gr.SelectData, walked: list):
            return details(request, walked[which][evt.index])
        return choose

    # On a phone the details are below the grid: the picked image's come into view.
    to_details = "() => { if (window.innerWidth <= 720) document.querySelector('#library-image')?.scrollIntoView({behavior: 'smooth'}) }"
    gallery.select(pick, ids, details_out, api_visibility="private", queue=False).then(None, js=to_details)
    lineage.select(step(0), walk, details_out, api_visibility="private", queue=False)
    children.select(step(1), walk, details_out, api_visibility="private", queue=False)

    def open_png(request: gr.Request, path: str | None):
        """The dropped picture's recipe, lineage and Content Credentials (any PNG or JPEG: one without a recipe
        shows its credentials alone); the drop zone empties again, ready for the next file."""
        if not path:
            return {}
        library, user = shelf(studio, request)
        with open(path, "rb") as f:
            data = f.read()
        try:
            seen, missing = library.inspect(user, data), ""
        except NoRecipe as e:
            seen, missing = None, str(e)
        except AtelierError as e:
            gr.Warning(said(e))
            return {opened: None}
        if seen is not None and seen["in_library"]:
            return {**details(request, seen["recipe"]["image_id"], data), opened: None}
        known = seen["lineage"][:-1] if seen else []
        if seen is None:
            text = escape(missing) + credentials_words(studio, library, user, data)
        else:
            entry = {**seen["lineage"][-1], "recipe": seen["recipe"], "created": "",
                     "width": seen["recipe"].get("width"), "height": seen["recipe"].get("height")}
            gr.Info("That image is not in your library; its recipe and known ancestors are shown.")
            text = plain_words(entry, words_of.get(seen["recipe"].get("task"))) + credentials_words(
                studio, library, user, data
            )
        return {
            current: None, large: served(data, "opened" + Path(path).suffix.lower()), words: text,
            lineage: thumbs(library, user, known), children: [], walk: [[r["image_id"] for r in known], []],
            favourite: gr.Button("☆ Favourite"), download: None, opened: None,
        }

    opened.upload(open_png, opened, [*details_out, opened], api_visibility="private")
    return details, details_out


def _wire_actions(studio: Studio, panes: Panes, refresh, details, details_out: list, shown: list, inputs: list):
    """Favourite, Download, Delete with Undo, and Compare."""
    page, current, marked, trashed = panes.page, panes.current, panes.marked, panes.trashed
    large, words, favourite, delete = panes.large, panes.words, panes.favourite, panes.delete
    undo, download, lineage, children = panes.undo, panes.download, panes.lineage, panes.children
    mark, compare, comparing, slider = panes.mark, panes.compare, panes.comparing, panes.slider
    differing = panes.differing

    def toggle_favourite(request: gr.Request, image_id):
        if not image_id:
            return slip(NOTHING_PICKED, [favourite])
        library, user = shelf(studio, request)
        row = library.get(user, image_id)
        row = library.favourite(user, row["image_id"], not row["favourite"])
        return gr.Button("★ Favourite" if row["favourite"] else "☆ Favourite")

    # Queued, so that a notice reaches the page.
    favourite.click(toggle_favourite, current, favourite, api_visibility="private")

    def download_picked(image_id):
        if not image_id:  # with an image picked, the button itself downloads it
            gr.Info(NOTHING_PICKED)

    download.click(download_picked, current, None, api_visibility="private")

    def remove(request: gr.Request, image_id, number, *values):
        if not image_id:
            return slip(NOTHING_PICKED, after)
        library, user = shelf(studio, request)
        library.trash(user, image_id)
        gr.Info("Moved to the trash. Undo puts it back.")
        return {**refresh(request, number, *values), trashed: image_id, undo: gr.Button(visible=True),
                current: None, large: None, words: "Deleted.", lineage: [], children: []}

    def put_back(request: gr.Request, image_id, number, *values):
        if not image_id:
            return slip("Nothing to put back.", after)
        library, user = shelf(studio, request)
        library.restore(user, image_id)
        return {**refresh(request, number, *values), **details(request, image_id), trashed: None,
                undo: gr.Button(visible=False)}

    after = [*shown, trashed, undo, *details_out]
    delete.click(remove, [current, page, *inputs], after, api_visibility="private")
    undo.click(put_back, [trashed, page, *inputs], after, api_visibility="private", queue=False)

    def pick_a(request: gr.Request, image_id):
        if not image_id:
            return slip(NOTHING_PICKED, [marked])
        library, user = shelf(studio, request)
        gr.Info(f"A: {said(library.get(user, image_id)['label'])}. Now pick B and press “Compare A with this”.")
        return image_id

    def side_by_side(request: gr.Request, a, b):
        if not a:
            return slip("Pick an image as A first (“Compare: pick as A”).", [slider, differing, comparing])
        if not b:
            return slip(NOTHING_PICKED, [slider, differing, comparing])
        library, user = shelf(studio, request)
        first, second = library.get(user, a), library.get(user, b)
        pair = (served(library.png(user, a), f"{a}.png"), served(library.png(user, b), f"{b}.png"))
        return {slider: pair, differing: differences_table(first, second), comparing: gr.Accordion(visible=True, open=True)}

    mark.click(pick_a, current, marked, api_visibility="private")
    to_compare = "() => document.querySelector('#library-slider')?.scrollIntoView({behavior: 'smooth', block: 'start'})"
    compare.click(side_by_side, [marked, current], [slider, differing, comparing], api_visibility="private").then(
        None, js=to_compare)


def _typed(fn):
    """A lambda handler that receives the person's request: Gradio finds it by the annotation."""

    def handler(request: gr.Request, *values):
        return fn(request, *values)

    return handler


def _wire_restore_and_send(studio: Studio, picker, tabs: dict[str, Tab], switcher: gr.Tabs, restore: gr.Button,
                           send_row: gr.Row, current: gr.State) -> None:
    """Restore puts the recipe's settings into the tab that made it (and, where that tab starts from an
    image, the image it was made from); "Send to" hands the image to any tab that takes one."""
    receiving = {name: tab for name, tab in tabs.items() if tab.receive is not None}
    outputs = list(dict.fromkeys([
        picker, switcher, *(c for tab in tabs.values() for c in tab.controls.fields.values()),
        *(c for tab in tabs.values() for c in tab.controls.following),
        *(c for tab in receiving.values() for c in tab.receive.outputs),
    ]))

    def into_tab(request: gr.Request, image_id):
        if not image_id:
            return slip(NOTHING_PICKED, outputs)
        library, user = shelf(studio, request)
        entry = library.get(user, image_id)
        recipe = Recipe.from_dict(entry["recipe"])
        if recipe.model not in studio.model_names:
            return slip(f"That image was made with {said(repr(recipe.model))}, which this server does not offer.",
                        outputs)
        values = recipe.values()
        # The tab of the task's name, or the one whose controls cover most of its settings (Outpaint: Inpaint's).
        name = recipe.task if recipe.task in tabs else max(tabs, key=lambda n: len(set(tabs[n].controls.fields) & set(values)))
        tab = tabs[name]
        updates = recipe_updates(studio, picker, tabs, tab, recipe)
        if tab.receive is not None and recipe.parent:
            try:
                source = picture(library.png(user, recipe.parent)).convert("RGB")
                updates.update(zip(tab.receive.outputs, tab.receive.accept(source, recipe.parent)))
            except NotFound:
                gr.Warning("The image it was made from is not in your library; add one to the tab yourself.")
        gr.Info(f"Settings restored into {tab.title}.")
        return {**updates, switcher: gr.Tabs(selected=name)}

    restore.click(into_tab, current, outputs, api_visibility="private")
    with send_row:
        for name, tab in receiving.items():
            def send(request: gr.Request, image_id, tab=tab, name=name):
                sent = [*tab.receive.outputs, switcher]
                if not image_id:
                    return slip(NOTHING_PICKED, sent)
                library, user = shelf(studio, request)
                try:
                    image = picture(library.png(user, image_id)).convert("RGB")
                except NotFound as e:
                    return slip(str(e), sent)
                return dict(zip(sent, (*tab.receive.accept(image, image_id), gr.Tabs(selected=name))))

            gr.Button(f"Send to {tab.title}", size="sm", variant="secondary", min_width=100).click(
                send, current, [*tab.receive.outputs, switcher], api_visibility="private"
            )


def _api(studio: Studio) -> None:
    """`/library_search` and `/lineage`: the person's images as JSON over HTTP; `/credentials`: any file's
    Content Credentials, validated."""

    def library_search(request: gr.Request, query="", model="", task="", favourites_only=False, limit=PAGE,
                       offset=0) -> list[dict]:
        """The person's images, newest first: words of the prompt, a model, a task, favourites only, a page."""
        library, user = shelf(studio, request)
        try:
            rows = library.search(user, str(query or ""), str(model or "") or None, str(task or "") or None,
                                  favourites_only is True or str(favourites_only).lower() == "true", limit, offset)
        except ValidationError as e:  # a page out of range
            raise gr.Error(str(e), print_exception=False) from None
        return [{k: row[k] for k in API_FIELDS} for row in rows]

    def lineage(request: gr.Request, image_id: str) -> list[dict]:
        """From the oldest known ancestor to the image: each step's id, task, parent, label and settings."""
        library, user = shelf(studio, request)
        try:
            chain = library.lineage(user, image_id)
        except NotFound as e:
            raise gr.Error(str(e), print_exception=False) from None
        steps = []
        for row in chain:
            recipe = library.get(user, row["image_id"])["recipe"]
            settings = {**(recipe.get("extra") or {}), **(recipe.get("settings") or {})}
            steps.append({**{k: row[k] for k in API_FIELDS}, "settings": settings})
        return steps

    def credentials(path: str | None) -> dict:
        """A PNG's or JPEG's Content Credentials, validated: present, valid, trusted, changed (after signing),
        signer, ai_generated, edited, model, ingredients, problems, and the whole manifest store."""
        if not path:
            raise gr.Error("Give an image file.", print_exception=False)
        with open(path, "rb") as f:
            return studio.read_credentials(f.read())

    with gr.Row(visible=False):
        given = gr.File(label="image", type="filepath")
        checked, check_button = gr.JSON(), gr.Button("credentials")
    check_button.click(credentials, given, checked, api_name="credentials")
    with gr.Row(visible=False):
        search_fields = dict(query=gr.Textbox("", label="query"), model=gr.Textbox("", label="model"),
                             task=gr.Textbox("", label="task"), favourites_only=gr.Checkbox(False, label="favourites_only"),
                             limit=gr.Number(PAGE, label="limit"), offset=gr.Number(0, label="offset"))
        image_id = gr.Textbox("", label="image_id")
        found, chain = gr.JSON(), gr.JSON()
        search_button, lineage_button = gr.Button("library_search"), gr.Button("lineage")
    search_button.click(library_search, inputs_kwargs=search_fields, outputs=found, api_name="library_search",
                        preprocess=False)
    lineage_button.click(lineage, inputs_kwargs={"image_id": image_id}, outputs=chain, api_name="lineage",
                         preprocess=False)
