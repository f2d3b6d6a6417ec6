"""The events that run a task, in the browser and over HTTP, and the streaming of a job into the page:
one handler for both, named and described after the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from anyio import to_thread
from PIL import Image

from pipelines import (
    Job,
    ModelUnavailable,
    Progress,
    Request,
    Result,
    Studio,
    ValidationError,
    friendly,
    log_failure,
)

from .controls import Controls, described
from .images import refuse_non_image, same_parent, upload_path
from .messages import field_message, said
from .results import ResultPanel, reuse_last_seed

GPU = "accelerator"  # one concurrency group for every event that runs a model: one job at a time


POLL_SECONDS = 0.25  # how often the handler looks for a job's newest progress and preview
# An API caller's progress (for its ETA) at most this often: each update is a message its client parses
# while the model works beside it.
API_PROGRESS_SECONDS = 0.25


@dataclass
class Receive:
    """Where an image sent from another tab lands: `accept(image, image_id)` gives the values of `outputs`."""

    outputs: list
    accept: Callable[[Image.Image, str | None], tuple]


@dataclass
class Tab:
    """What the page needs of a tab once it is built."""

    title: str
    controls: Controls
    results: ResultPanel
    receive: Receive | None = None


@contextlib.asynccontextmanager
async def running(start: Callable[[], Job], labels: dict[str, str] | None = None) -> AsyncIterator[Job]:
    """The job `start()` submits (in a worker thread: a request may open its images), cancelled on the way
    out: ended, failed, or its event cancelled (Stop, a closed page, an API client's cancel), it ends within
    one denoising step. Validation errors come back before anything is queued, naming the field by its
    label where `labels` has one (the page) or by its parameter name (the HTTP API). Cancelled while it is
    being submitted, the job is stopped as soon as it exists: the thread goes on, and no one else holds it."""
    submitting = asyncio.ensure_future(to_thread.run_sync(start))
    try:
        job = await asyncio.shield(submitting)
    except ValidationError as e:
        raise gr.Error(field_message(e, labels or {}), title="Check the settings", print_exception=False) from None
    except asyncio.CancelledError:
        submitting.add_done_callback(lambda done: done.exception() or stop(done.result()))
        raise
    try:
        yield job
    finally:
        stop(job)


def stop(job: Job) -> None:
    """Cancel `job` without holding up the event loop (a remote job's cancel waits on its cluster)."""
    asyncio.get_running_loop().run_in_executor(None, job.cancel)


async def answer(start: Callable[[], Job], progress: gr.Progress) -> Result:
    """A script's call (the HTTP API, an MCP tool): one result, progress for its ETA, no previews (each
    would be a file its client fetches)."""
    async with running(start) as job:
        async for _ in previews(job, progress, progress_every=API_PROGRESS_SECONDS):
            pass
        return await outcome(job)


async def previews(
    job: Job,
    progress: gr.Progress,
    *,
    describe: Callable[[Progress], str] | None = None,
    progress_every: float = 0.0,
) -> AsyncIterator[Image.Image]:
    """The job's live previews as they come, its progress reported on the way (at most every
    `progress_every` seconds, but a message, a load or the first step always); ends with the job.
    The waiting is awaited, so a cancelled event (Stop, a closed page, an API client's cancel) stops
    here at once and the caller's `finally` cancels the job, which ends within one denoising step."""
    reported = -progress_every  # when progress last went out
    while True:
        # Gradio's pool of worker threads, as a sync handler had; a cancel need not wait for the poll
        event, ended = await to_thread.run_sync(job.latest, POLL_SECONDS, abandon_on_cancel=True)
        if event is not None:
            now = time.monotonic()
            if not event.total:
                progress(0, desc=event.message)
            elif now - reported >= progress_every or event.message:
                text = event.message or event.phase or (describe(event) if describe else "Sampling")
                progress((event.step, event.total), desc=text, unit="steps")
                reported = now
            if event.preview is not None:
                yield event.preview
        if ended:
            return


async def outcome(job: Job) -> Result:
    """The ended job's result (finishing it may save and sign its images: off the event loop), any
    failure as a readable message; a model that is not on the machine says how to fetch it, and that
    stays until closed."""
    try:
        return await to_thread.run_sync(job.result)
    except ModelUnavailable as e:  # the command that fetches it must stay long enough to be copied
        raise gr.Error(said(e), duration=None, title="Model not on this machine", print_exception=False) from None
    except Exception as e:
        log_failure(e)  # once, with its own traceback where it is a bug
        raise gr.Error(said(friendly(e)), print_exception=False) from None


def owner(request: gr.Request | None) -> dict[str, str | None]:
    """Who asks: the signed-in name (None without --auth) and the browser session (whose library in
    memory keeps the results in a public demo)."""
    return {"user": getattr(request, "username", None), "session": getattr(request, "session_hash", None)}


def task_handler(
    studio: Studio,
    request_type: type[Request],
    panel: ResultPanel,
    prepare: Callable[[dict], dict] | None = None,
    *,
    page: Page | None = None,
):
    """The handler of a task's events: the named inputs become the request's fields (after `prepare`,
    which turns what a component hands over into what the request takes), the studio runs it, the
    results go to the panel. With `page`, it serves the page (labels in messages, a preview apart
    from the results, a status line); without, the HTTP API (parameter names, the API's outputs)."""

    def start(values: dict, request: gr.Request | None) -> Callable[[], Job]:
        return lambda: studio.submit(request_type(**(prepare(values) if prepare else values)), **owner(request))

    async def run(progress=gr.Progress(), request: gr.Request = None, **values):
        result = await answer(start(values, request), progress)
        for notice in result.notices:
            gr.Warning(said(notice))
        return panel.present(result)

    async def run_on_the_page(progress=gr.Progress(), request: gr.Request = None, **values):
        """The page's run: the previews apart from the results, a status line; a refusal is said in a
        message and the status line, never as an error event (which would blank the results)."""
        yield panel.starting()
        describe = page.describe(values) if page.describe else None
        try:
            async with running(start(values, request), page.labels) as job:
                async for preview in previews(job, progress, describe=describe):
                    yield panel.show_preview(preview)
                result = await outcome(job)
        except gr.Error as e:
            title = "Not made" if e.title == "Error" else e.title
            gr.Warning(e.message, duration=e.duration, title=title)
            yield panel.failed(e.message)
            return
        yield panel.show(result)

    # Named and described after the task (its declared settings), for the API page and MCP tools; the
    # page's own event has a name of its own, so the endpoint keeps the task's.
    handler = run if page is None else run_on_the_page
    handler.__name__ = handler.__qualname__ = request_type.task if page is None else f"{request_type.task}_on_the_page"
    handler.__doc__ = described(request_type)
    return handler


@dataclass
class Page:
    """How a task's button event speaks to the person: each request field by the label they see, and
    (for a long job) what its progress means, given the request's values."""

    labels: dict[str, str]
    describe: Callable[[dict], Callable[[Progress], str]] | None = None


def labels_of(inputs: dict, **extra: str) -> dict[str, str]:
    """The label of each named input that has one, plus the labels of fields `prepare` makes."""
    return {name: c.label for name, c in inputs.items() if getattr(c, "label", None)} | extra


def api_endpoint(
    studio: Studio,
    request_type: type[Request],
    panel: ResultPanel,
    fields: dict,
    files: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    lineage: bool = True,
):
    """The task's HTTP endpoint, named after it: the request's fields as named parameters, images as
    plain files that the request opens itself (so a bad upload is refused with its name; the `optional`
    ones may be left out), and (with `lineage`) the image id the work starts from as `parent`. Values arrive
    unprocessed, so every refusal names its field (Gradio's own slider check would answer first, with
    only the bound)."""
    with gr.Row(visible=False):
        uploads = {name: gr.File(label=name) for name in files}
        parent = {"parent": gr.Textbox("", label="parent")} if lineage else {}
        button = gr.Button(request_type.task)
    inputs = {**uploads, **fields, **parent}
    prepare = (lambda values: {**values, **{name: upload_path(values[name]) for name in files}}) if files else None
    handler = task_handler(studio, request_type, panel, prepare)
    # A file input has no value to show as its default; the handler's signature gives those that may be
    # left out a default of None, which Gradio's API page and clients read.
    keyword = inspect.Parameter.KEYWORD_ONLY
    handler.__signature__ = inspect.Signature(
        [
            *list(inspect.signature(handler).parameters.values())[:2],  # progress, request
            *(inspect.Parameter(name, keyword, default=None) for name in optional),
            inspect.Parameter("values", inspect.Parameter.VAR_KEYWORD),
        ]
    )
    return button.click(
        handler,
        inputs_kwargs=inputs,
        outputs=panel.outputs,
        api_name=request_type.task,
        concurrency_id=GPU,
        preprocess=False,
    )


def task_events(
    studio: Studio,
    request_type: type[Request],
    panel: ResultPanel,
    button: gr.Button,
    inputs: dict,
    api_fields: dict,
    *,
    prepare: Callable[[dict], dict] | None = None,
    files: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    labels: dict[str, str] | None = None,
    describe: Callable[[dict], Callable[[Progress], str]] | None = None,
    lineage: bool = True,
):
    """A task's two events: its button's (values as the page's components hand them over, through
    `prepare`; refusals name the inputs' labels, plus `labels` for fields `prepare` makes) and its HTTP
    endpoint (`api_fields`, plus `files`, and `parent` with `lineage`). Returns the button's event."""
    page = Page(labels_of(inputs, **(labels or {})), describe)
    event = button.click(
        task_handler(studio, request_type, panel, prepare, page=page),
        inputs_kwargs=inputs,
        outputs=panel.page_outputs,
        api_visibility="private",
        concurrency_id=GPU,
        show_progress_on=[panel.gallery],  # over the results, never over the preview being watched
    )
    api_endpoint(studio, request_type, panel, api_fields, files, optional, lineage)
    return event


def finish_tab(
    title: str,
    controls: Controls,
    panel: ResultPanel,
    *,
    stop: gr.Button,
    events: list,
    reuse: gr.Button,
    source=None,
    parent: gr.State | None = None,
    accept: Callable[[Image.Image], Any] = lambda image: image,
    uploaded: Callable[[Any], Any] | None = None,
) -> Tab:
    """What every tab ends with: Stop cancels its events (the half-made preview goes, the previous
    results stay, and the status says so), "Reuse last" works, and where it takes an image (`source`),
    an upload starts a new lineage (then `uploaded(value, parent)` updates the source for a new picture) and
    "Send to" lands there with the image's id."""
    stop.click(panel.stopped, None, [panel.status, panel.live], cancels=events, api_visibility="private", queue=False)
    reuse_last_seed(reuse, controls, panel)
    if source is None:
        return Tab(title, controls, panel)
    lineage = source.upload(same_parent, [source, parent], parent, api_visibility="private", queue=False)
    if uploaded is not None:  # after, not beside: two events reading one upload race its file being written
        lineage.then(uploaded, [source, parent], source, api_visibility="private", queue=False)
    if isinstance(source, gr.Image):  # the image editor's own check is in the page's script
        # Queued, so that its warning reaches the page.
        source.upload(refuse_non_image, source, source, preprocess=False, api_visibility="private")
    receive = Receive([source, parent], lambda image, image_id: (accept(image), image_id))
    return Tab(title, controls, panel, receive)
