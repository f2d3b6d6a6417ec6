"""The page: header, model picker with its residency panel, a tab per task, and what joins the tabs —
every tab follows the model picker, "Send to" hands an image from one tab to another, and an Atelier PNG
(given to "Restore settings", dropped on a prompt, or dropped on an image area, which offers it) restores
that tab's settings."""

from __future__ import annotations

import importlib
import importlib.util

import gradio as gr

from pipelines import Studio

from . import models, styles
from .events import Tab
from .images import picked
from .messages import slip
from .restore import recipe_in, recipe_updates, restore_values
from .tabs import library

THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate", radius_size="md")
CSS = """
.hint { opacity: .7; font-size: .85em; margin-top: -.4em }
footer { display: none !important }
#title h1 { margin-bottom: .1em }
/* A small picture (the embedded model's 64×64) fills its frame instead of sitting there as a thumbnail. */
.source-image img { width: 100%; height: 100%; object-fit: contain }
/* The Library's comparison: the settings that differ stand out. */
.library-compare { width: 100%; font-size: .9em }
.library-compare tr.differs { background: rgba(250, 204, 21, .28); font-weight: 600 }
@media (max-width: 640px) { #library-gallery .grid-container { --grid-cols: 3 !important } }
.upload-refused { color: var(--error-text-color); font-weight: 600; margin: .5em }
/* The live preview is shown whole, never cropped. */
.live-preview img { object-fit: contain }
/* Results: no scroll box inside the page, and a grid no wider than the window is tall, so a whole
   batch of square pictures shows at a glance on a laptop. */
.results .grid-wrap { max-height: none !important; overflow: visible !important }
.results .grid-container { max-width: max(320px, calc(100vh - 290px)); margin: 0 auto }
.send-row button { flex: 1 1 auto; min-width: 140px !important }
.status:empty, .offer-drop { display: none !important }
#server-lost { position: fixed; top: 0; left: 0; right: 0; z-index: 1000; padding: .6em 1em; text-align: center;
  background: var(--color-accent-soft); color: var(--body-text-color); font-weight: 600 }
/* Messages can be selected and copied (the command that fetches a model, say). */
.toast-body, .toast-body * { user-select: text !important; -webkit-user-select: text !important }
/* The model picker's text ends before its arrow; a picked LoRA's Remove sits beside its weight. */
#model-picker input { text-overflow: ellipsis; padding-right: 2em }
.lora-remove { align-self: center }
/* Library thumbnails' captions: small, on at most two lines at the bottom, instead of "text to i…". */
#library-gallery .caption-label { white-space: normal; font-size: .68em; line-height: 1.15; padding: 1px 3px;
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; top: auto;
  bottom: 4px; max-width: calc(100% - 8px) }
.clamp-note { font-size: .85em; color: var(--body-text-color-subdued); padding: .2em .4em }
/* A phone: the settings column dissolves so the results come right after the main button, and the rest
   of the settings after the results (`order`); every block takes the full width. */
@media (max-width: 720px) {
  .tab-body { flex-direction: column; align-items: stretch }
  .tab-body > .settings { display: contents }
  .tab-body > .output { order: 1 }
  .tab-body > .settings > .run-row ~ * { order: 2 }
  .hint { display: none }
}
"""
# Ctrl/Cmd+Enter presses the visible tab's primary button; Esc presses its Stop. A number typed past a
# slider's bounds is clamped by the slider: a note beside it says what was changed and why. An Atelier PNG
# dropped on a prompt goes to that tab's "Restore settings" drop zone.
JS = """
() => {
  const visible = (el) => el && el.offsetParent !== null;
  const pick = (sel) => [...document.querySelectorAll(sel)].find(visible);
  document.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { pick('button.primary')?.click(); e.preventDefault(); }
    // Esc stops only a run in progress (its results show Gradio's progress), never one that ended: it
    // also closes dropdowns and the brush's popup.
    if (e.key === 'Escape' && pick('[role=tabpanel] .results .wrap:not(.hide)')) pick('button.stop')?.click();
  });
  // An image editor's Undo goes back through the strokes, never past them: the picture itself is its first
  // step. Strokes are counted; a new picture (given, sent, restored) or a cleared canvas starts again at 0.
  const strokes = new WeakMap();
  const editorOf = (el) => el?.closest?.('#inpaint-editor, #sketch-canvas');
  const restart = () => document.querySelectorAll('#inpaint-editor, #sketch-canvas').forEach((ed) => strokes.set(ed, 0));
  document.addEventListener('pointerdown', (e) => {  // a stroke starts on the drawing's canvas
    const editor = editorOf(e.target);
    if (editor && e.target.tagName === 'CANVAS') strokes.set(editor, (strokes.get(editor) || 0) + 1);
  }, true);
  const undo = (e, editor) => {
    if ((strokes.get(editor) || 0) > 0) { strokes.set(editor, strokes.get(editor) - 1); return; }
    e.preventDefault();
    e.stopImmediatePropagation();
  };
  document.addEventListener('click', (e) => {
    const button = e.target.closest?.('button');
    const editor = editorOf(button);
    const name = button?.getAttribute('aria-label');
    if (editor && name === 'Undo') undo(e, editor);
    else if (editor && name === 'Redo') strokes.set(editor, (strokes.get(editor) || 0) + 1);
    else if (editor && name === 'Clear canvas') strokes.set(editor, 0);
    else if (/^(Send to |Restore )/.test(button?.innerText || '')) restart();
  }, true);
  document.addEventListener('keydown', (e) => {
    const editor = editorOf(document.activeElement);
    if (editor && (e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'z' && !e.shiftKey) undo(e, editor);
  }, true);
  document.addEventListener('change', (e) => { if (editorOf(e.target) && e.target.type === 'file') strokes.set(editorOf(e.target), 0); }, true);
  // A file that is not a picture never reaches an image area (an editor fails on it with a page error, an
  // image would lose the picture it showed): it is refused beside the area, and what was there stays.
  const passed = new WeakSet();
  const pictures = async (files) => {
    for (const file of files) { try { (await createImageBitmap(file)).close(); } catch { return false; } }
    return true;
  };
  const checked = async (e, files, pass) => {
    const area = e.target.closest?.('.image-area');
    if (!area || passed.has(e) || !files.length) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    area.parentElement.querySelector(':scope > .upload-refused')?.remove();
    if (await pictures(files)) { const again = pass(); passed.add(again); e.target.dispatchEvent(again); return; }
    if (e.target.type === 'file') e.target.value = '';
    area.after(Object.assign(document.createElement('p'), {className: 'upload-refused', role: 'alert',
      textContent: 'That file is not an image, or it is damaged.'}));
  };
  window.addEventListener('change', (e) => {
    if (e.target.type === 'file') checked(e, [...(e.target.files || [])], () => new Event('change', {bubbles: true}));
  }, true);
  window.addEventListener('drop', (e) => {
    const files = [...(e.dataTransfer?.files || [])];
    checked(e, files, () => {
      const given = new DataTransfer();
      files.forEach((f) => given.items.add(f));
      return new DragEvent('drop', {dataTransfer: given, bubbles: true, cancelable: true});
    });
  }, true);
  const noteClamp = (input) => {
    const block = input.closest('.block');
    const value = parseFloat(input.value), low = parseFloat(input.min), high = parseFloat(input.max);
    const bound = value > high ? ['more', 'at most', high] : value < low ? ['less', 'at least', low] : null;
    // In bounds (the slider may already have clamped it by the time the box loses focus): a note
    // already there stays until the box is typed in again.
    if (isNaN(value) || !bound || !block) return;
    block.querySelector('.clamp-note')?.remove();
    // The box shows what the note says at once (the slider itself clamps only when the box loses focus).
    input.value = String(bound[2]);
    input.dispatchEvent(new Event('input', {bubbles: true}));
    const label = (input.getAttribute('aria-label') || '').replace('number input for ', '');
    const note = document.createElement('div');
    note.className = 'clamp-note';
    note.setAttribute('role', 'status');
    note.textContent = `${label}: ${value} is ${bound[0]} than this model and server allow ` +
                       `(${bound[1]} ${bound[2]}), so it was set to ${bound[2]}.`;
    block.appendChild(note);
  };
  // The server gone mid-run (stopped, restarted) leaves Gradio's progress frozen and the preview broken:
  // while a run shows progress, the page asks the server every 2 s whether it still answers (the address
  // Gradio's own reconnection asks). If not, it says so and keeps the words typed in this tab's session;
  // once the server answers, the page is loaded again (as Gradio does after a lost connection: the old
  // run's state is gone with the server), with the words back and a note that it can be run again.
  const LOST = 'atelier-server-lost';
  const answers = () => fetch('gradio_api/app_id', {cache: 'no-store'}).then((r) => r.ok, () => false);
  const tell = (text) => {
    const banner = document.getElementById('server-lost') ||
      document.body.appendChild(Object.assign(document.createElement('div'), {id: 'server-lost', role: 'alert'}));
    banner.textContent = text;
  };
  const typed = () => Object.fromEntries([...document.querySelectorAll('.block[id] textarea')]
    .filter((box) => box.value).map((box) => [box.closest('.block[id]').id, box.value]));
  const kept = sessionStorage.getItem(LOST);
  if (kept) {
    sessionStorage.removeItem(LOST);
    for (const [id, value] of Object.entries(JSON.parse(kept))) {
      const box = document.querySelector(`#${CSS.escape(id)} textarea`);
      if (box && !box.value) { box.value = value; box.dispatchEvent(new Event('input', {bubbles: true})); }
    }
    tell('The server is back, and the page with it (your words are kept): run it again.');
  }
  let lost = false, asking = false;
  setInterval(async () => {
    if (asking || !(lost || pick('[role=tabpanel] .results .wrap:not(.hide)'))) return;
    asking = true;
    const up = await answers();
    asking = false;
    if (up && lost) window.location.reload();
    else if (!up && !lost) {
      lost = true;
      sessionStorage.setItem(LOST, JSON.stringify(typed()));
      tell('The server stopped during this run \u2014 nothing was lost from the Library. Try again when it is back.');
    }
  }, 2000);
  document.addEventListener('click', (e) => {  // running again: the note has been read
    if (!lost && e.target.closest?.('button.primary')) document.getElementById('server-lost')?.remove();
  }, true);
  const numberBox = (e) => e.target.matches && e.target.matches('input[type=number]') ? e.target : null;
  document.addEventListener('keydown', (e) => { if (e.key === 'Enter' && numberBox(e)) noteClamp(e.target); }, true);
  document.addEventListener('blur', (e) => { if (numberBox(e)) noteClamp(e.target); }, true);
  document.addEventListener('input', (e) => {  // a new value typed or dragged: the note was about the old one
    if (e.isTrusted && e.target.matches?.('input[type=number], input[type=range]')) {
      e.target.closest('.block')?.querySelector('.clamp-note')?.remove();
    }
  }, true);
  // A PNG given to an image area (dropped, or picked with its file dialog) also goes to the tab's hidden
  // drop zone, where the server looks for a recipe and offers to restore it.
  const toZone = (target, files, zoneSelector) => {
    const file = [...(files || [])].find((f) => f.type === 'image/png');
    const zone = target.closest('[role=tabpanel]')?.querySelector(zoneSelector);
    if (!file || !zone) return false;
    const given = new DataTransfer();
    given.items.add(file);
    zone.files = given.files;
    zone.dispatchEvent(new Event('change', { bubbles: true }));
    return true;
  };
  const areaOf = (e) => e.target.closest && e.target.closest('.image-area');
  document.addEventListener('change', (e) => {
    if (areaOf(e) && e.target.type === 'file') toZone(e.target, e.target.files, '.offer-drop input[type=file]');
  }, true);
  document.addEventListener('drop', (e) => {
    if (areaOf(e)) toZone(e.target, e.dataTransfer?.files, '.offer-drop input[type=file]');
  }, true);
  const promptOf = (e) => e.target.closest && e.target.closest('textarea');
  document.addEventListener('dragover', (e) => { if (promptOf(e)) e.preventDefault(); }, true);
  document.addEventListener('drop', (e) => {
    if (promptOf(e) && toZone(e.target, e.dataTransfer?.files, '.restore-row input[type=file]')) {
      e.preventDefault();
      e.stopPropagation();
    }
  }, true);
}
"""


def tab_modules(studio: Studio) -> dict:
    """The tab module of every registered task that has one (`ui/tabs/<task>.py`), in registry order."""
    names = [name for name in studio.task_names if importlib.util.find_spec(f"{__package__}.tabs.{name}")]
    return {name: importlib.import_module(f"{__package__}.tabs.{name}") for name in names}


def build_ui(studio: Studio, model: str | None = None) -> gr.Blocks:
    """The whole page for `studio`, showing `model` first (the first preset when not given)."""
    return build_page(studio, model)[0]


def build_page(studio: Studio, model: str | None = None) -> tuple[gr.Blocks, dict[str, Tab]]:
    """The page and its tabs by task name."""
    with gr.Blocks(title="Atelier", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=260):  # on a phone the picker wraps below, full width
                gr.Markdown("# Atelier\nWords into images, every tab from the same model.", elem_id="title")
            picker = gr.Dropdown(
                models.picker_choices(studio),
                value=model or studio.model_names[0],
                label="Model",
                scale=0,
                min_width=400,
                elem_id="model-picker",
            )
        update_models = models.render(studio, picker)
        tabs: dict[str, Tab] = {}
        with gr.Tabs(overflow_behavior="wrap") as switcher:  # every tab in sight, on a phone too
            for name, module in tab_modules(studio).items():
                with gr.Tab(module.TITLE, id=name, elem_id=f"tab-{name}"):
                    tabs[name] = module.render(studio, picker)
            with gr.Tab(library.TITLE, id="library", elem_id="tab-library") as library_tab:
                shelf = library.render(studio, picker, tabs, switcher)
        styles.render(studio, picker, tabs)
        _follow_the_model(studio, picker, tabs)
        for name, tab in tabs.items():
            _wire_send(name, tab, tabs, switcher)
            _wire_restore(studio, tab, picker, tabs)
        _keep_the_library_current(studio, demo, library_tab, shelf, tabs)
        # Whether each model is here is read when the page opens (not when the server started) and after
        # every run (it loaded the model); the panel's timer catches the rest (another person, a restart).
        demo.load(*update_models, api_visibility="private", queue=False)
        for tab in tabs.values():
            tab.results.recipes.change(*update_models, api_visibility="private", queue=False, show_progress="hidden")
    return demo, tabs


def _keep_the_library_current(studio: Studio, demo: gr.Blocks, tab: gr.Tab, shelf: library.LibraryTab,
                              tabs: dict[str, Tab]) -> None:
    """A result just made appears in the Library without a reload: every tab's new recipes, opening the
    page and opening the tab show the newest again. A session's library in memory ends with the session."""
    refresh = dict(fn=shelf.refresh, inputs=shelf.refresh_inputs, outputs=shelf.refresh_outputs,
                   api_visibility="private", queue=False)
    for other in tabs.values():
        other.results.recipes.change(**refresh)
    tab.select(**refresh)
    demo.load(**refresh)

    def forget(request: gr.Request):
        studio.libraries.forget(request.session_hash)

    demo.unload(forget)


def _follow_the_model(studio: Studio, picker: gr.Dropdown, tabs: dict[str, Tab]) -> None:
    """Choosing a model gives every tab that model's sizes, steps, guidance and samplers."""

    def follow(name: str) -> dict:
        preset = studio.preset(name)
        return {component: update for tab in tabs.values() for component, update in tab.controls.follow(preset).items()}

    following = [component for tab in tabs.values() for component in tab.controls.following]
    # `input`, not `change`: restoring a recipe sets the picker too, with the recipe's own values.
    picker.input(follow, picker, following, api_visibility="private", queue=False)


def _wire_send(name: str, tab: Tab, tabs: dict[str, Tab], switcher: gr.Tabs) -> None:
    """A "Send to" button for every other tab that takes an image: the selected image (and its id, for
    lineage) lands there and that tab opens."""
    with tab.results.send_row:
        for target, other in tabs.items():
            if other.receive is None or target == name:
                continue

            def send(gallery, recipes, index, accept=other.receive.accept, target=target,
                     outputs=(*other.receive.outputs, switcher)):
                if not gallery:
                    return slip("Nothing to send yet: generate an image first.", outputs)
                image, parent = picked(gallery, recipes, index)
                return dict(zip(outputs, (*accept(image, parent), gr.Tabs(selected=target))))

            gr.Button(f"Send to {other.title}", size="sm", variant="secondary").click(
                send,
                [tab.results.gallery, tab.results.recipes, tab.results.selected],
                [*other.receive.outputs, switcher],
                api_visibility="private",
            )


def _wire_restore(studio: Studio, tab: Tab, picker: gr.Dropdown, tabs: dict[str, Tab]) -> None:
    """An Atelier PNG given to the tab's "Restore settings" button (or, through the page's script,
    dropped on a prompt): its model is chosen (every tab follows it) and each of this tab's controls that the recipe
    has a value for takes it. One given to an image area is taken as the picture to work on, and (the
    page's script handing it to the panel's hidden drop zone too) the panel offers to restore its
    settings as well."""
    following = [component for other in tabs.values() for component in other.controls.following]
    outputs = list(dict.fromkeys([picker, *following, *tab.controls.fields.values()]))
    panel = tab.results

    def restore(path: str | None) -> dict:
        recipe = restore_values(path, studio.model_names)
        if recipe is None:
            return {}
        gr.Info("Settings restored from the image's recipe.")
        return recipe_updates(studio, picker, tabs, tab, recipe)

    panel.restore.upload(restore, panel.restore, outputs, api_visibility="private")

    def offer(path: str | None) -> tuple:
        recipe = recipe_in(path, studio.model_names)
        if recipe is None:
            return gr.Group(visible=False), ""
        what = f"“{recipe.prompt[:60]}”, seed {recipe.seed}, {studio.preset(recipe.model).label}"
        return gr.Group(visible=True), f"This picture was made in Atelier ({what})."

    def accept(path: str | None) -> dict:
        return {**restore(path), panel.offer: gr.Group(visible=False)}

    panel.offer_drop.upload(offer, panel.offer_drop, [panel.offer, panel.offer_text], api_visibility="private")
    panel.offer_accept.click(accept, panel.offer_drop, [*outputs, panel.offer], api_visibility="private")
    panel.offer_dismiss.click(lambda: gr.Group(visible=False), None, panel.offer, api_visibility="private", queue=False)
