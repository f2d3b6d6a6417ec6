"""AUTOMATIC1111's `/sdapi/v1` over the Studio, as FastAPI routes served beside the page on its port.

Every generation is a Studio submit — the page's validation, limits, recipes and Library — made by the
signed-in person (HTTP Basic, the same `--auth` accounts as the page). The jobs wait for the one
accelerator in the order they came, with the page's; at most `--queue-size` API generations are in
flight at once. `progress`, `interrupt` and `skip` see the API's own generations, as AUTOMATIC1111's see
its one queue.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from dataclasses import dataclass, field
from secrets import compare_digest
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from PIL import Image
from pydantic import BaseModel, ConfigDict

import pipelines
from pipelines import AtelierError, Cancelled, Job, Progress, Result, Studio, ValidationError, friendly, log_failure
from pipelines.front.fields import MAX_SEED, as_int
from pipelines.front.images import load_image, open_upload
from pipelines.front.recipe import read_recipe

from . import a1111

MAX_BODY_BYTES = 64 * 2**20  # a request body past this is refused unread (pictures arrive as base64 inside it)
POLL_SECONDS = 0.2
Credentials = Annotated[HTTPBasicCredentials | None, Depends(HTTPBasic(auto_error=False))]


class Body(BaseModel):
    """What both generations take, typed as AUTOMATIC1111 types it (a wrong type is a 422); unknown
    keys are ignored, as there; ranges are the request types' to check."""

    model_config = ConfigDict(extra="ignore")

    prompt: str | None = None
    negative_prompt: str | None = None
    styles: list[str] | None = None
    seed: int | None = None
    subseed: int | None = None
    subseed_strength: float | None = None
    sampler_name: str | None = None
    sampler_index: str | None = None
    scheduler: str | None = None
    batch_size: int | None = None
    n_iter: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    width: int | None = None
    height: int | None = None
    restore_faces: bool | None = None
    tiling: bool | None = None
    override_settings: dict[str, Any] | None = None
    send_images: bool | None = None
    save_images: bool | None = None
    script_name: str | None = None
    alwayson_scripts: dict[str, Any] | None = None


class Txt2ImgBody(Body):
    enable_hr: bool | None = None
    hr_scale: float | None = None
    hr_upscaler: str | None = None
    hr_second_pass_steps: int | None = None
    denoising_strength: float | None = None


class Img2ImgBody(Body):
    init_images: list[str] | None = None
    mask: str | None = None
    mask_blur: int | None = None
    inpainting_fill: int | None = None
    inpaint_full_res: bool | None = None
    inpaint_full_res_padding: int | None = None
    inpainting_mask_invert: int | None = None
    denoising_strength: float | None = None
    resize_mode: int | None = None
    include_init_images: bool | None = None


class PngInfoBody(BaseModel):
    image: str = ""


class LimitedRoute(APIRoute):
    """Refuses a body whose declared length is past MAX_BODY_BYTES before reading it."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def limited(request: Request):
            length = request.headers.get("content-length", "0")
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                return JSONResponse({"detail": f"The body is larger than {MAX_BODY_BYTES // 2**20} MB."}, 413)
            return await handler(request)

        return limited


@dataclass
class Run:
    """One API generation as `progress` shows it: its n_iter jobs, the newest step and preview."""

    total: int  # jobs (n_iter)
    kind: str  # "txt2img" or "img2img"
    started: float = field(default_factory=time.monotonic)
    stamp: str = field(default_factory=lambda: time.strftime("%Y%m%d%H%M%S"))
    done: int = 0
    job: Job | None = None
    latest: Progress | None = None
    preview: Image.Image | None = None
    interrupted: bool = False
    skipped: bool = False


class SdApi:
    """The routes and what they share: the model in use, the generations in flight."""

    def __init__(self, studio: Studio, *, model: str, accounts: list[tuple[str, str]] = (), queue_size: int = 16):
        self.studio = studio
        self.model = model  # AUTOMATIC1111's sd_model_checkpoint: what a body that names none is made with
        self.queue_size = queue_size
        self._accounts = dict(accounts)
        self._runs: list[Run] = []
        self._lock = threading.Lock()

    # -- who asks ---------------------------------------------------------------------------------------

    def user(self, credentials: Credentials) -> str | None:
        """The signed-in name, or None when the server has no accounts; 401 otherwise."""
        if not self._accounts:
            return None
        password = self._accounts.get(credentials.username) if credentials else None
        if password is None or not compare_digest(credentials.password.encode(), password.encode()):
            raise HTTPException(401, "Incorrect username or password", headers={"WWW-Authenticate": "Basic"})
        return credentials.username

    # -- the routes -------------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/sdapi/v1", dependencies=[Depends(self.user)], route_class=LimitedRoute)
        signed_in = Depends(self.user)  # the same check as the router's; FastAPI runs it once a request

        @router.post("/txt2img")
        def txt2img(body: Txt2ImgBody, who: str | None = signed_in):
            return self.generate("txt2img", body.model_dump(exclude_unset=True), who)

        @router.post("/img2img")
        def img2img(body: Img2ImgBody, who: str | None = signed_in):
            if body.init_images is None:
                raise HTTPException(404, "Init image not found")
            return self.generate("img2img", body.model_dump(exclude_unset=True), who)

        @router.post("/png-info")
        def png_info(body: PngInfoBody):
            return self.answer(lambda: self.png_info(body.image))

        router.get("/progress")(self.progress)
        router.post("/interrupt")(self.interrupt)
        router.post("/skip")(self.skip)
        router.get("/options")(self.options)

        @router.post("/options")
        def set_options(options: dict[str, Any]):
            return self.answer(lambda: self.set_options(options))

        router.get("/sd-models")(self.sd_models)
        router.get("/samplers")(self.samplers)
        router.get("/schedulers")(self.schedulers)
        router.get("/loras")(self.loras)
        router.get("/prompt-styles")(self.prompt_styles)
        router.get("/memory")(self.memory)
        router.get("/upscalers")(lambda: [{"name": "None", "model_name": None, "model_path": None, "model_url": None,
                                           "scale": None}])
        for empty in ("/latent-upscale-modes", "/sd-vae", "/script-info", "/extensions"):
            router.get(empty)(nothing)
        router.get("/scripts")(lambda: {"txt2img": [], "img2img": []})
        router.post("/refresh-checkpoints")(lambda: None)  # the models are the server's presets, read at start
        return router

    @staticmethod
    def answer(work):
        """`work()`, a refusal as a 400 with its sentence under the client's field names."""
        try:
            return work()
        except ValidationError as e:
            return JSONResponse({"error": "ValidationError", "detail": a1111.refusal(e)}, 400)

    # -- generations ------------------------------------------------------------------------------------

    def generate(self, kind: str, body: dict[str, Any], user: str | None):
        try:
            return self._generate(kind, body, user)
        except ValidationError as e:
            return JSONResponse({"error": "ValidationError", "detail": a1111.refusal(e, kind)}, 400)
        except AtelierError as e:  # a model not on this machine, out of memory: said, not a traceback
            log_failure(e)
            return JSONResponse({"error": type(e).__name__, "detail": str(e)}, 503)
        except Exception as e:  # noqa: BLE001 - a bug: logged with its traceback, answered without it
            log_failure(e)
            return JSONResponse({"error": type(e).__name__, "detail": friendly(e)}, 500)

    def _generate(self, kind: str, body: dict[str, Any], user: str | None) -> dict[str, Any]:
        override = (body.get("override_settings") or {}).get("sd_model_checkpoint")
        model = self.checkpoint(override, "override_settings") if override else self.model
        preset = self.studio.preset(model)
        iterations = as_int("n_iter", body.get("n_iter") or 1, 1, self.studio.max_images)
        request_type, values, notices = self.translate(kind, body, preset)
        values["model"] = model
        results = self.run(kind, request_type, values, iterations, user)
        recipes = [recipe for result in results for recipe in result.recipes]
        notices += [notice for result in results for notice in result.notices]
        # The files as the Library keeps them: recipe inside and signed with Content Credentials.
        files = [png for result in results for png in result.pngs]
        sent = [a1111.encode_png(png) for png in files] if body.get("send_images", True) else []
        shown = {k: v for k, v in body.items() if k not in ("init_images", "mask")}
        info = a1111.info(recipes, body, model, a1111.model_hash(preset), notices)
        return {"images": sent, "parameters": shown, "info": json.dumps(info)}

    def translate(self, kind: str, body: dict[str, Any], preset) -> tuple[type, dict[str, Any], list[str]]:
        """The request type and its values for an AUTOMATIC1111 body, and what of it is ignored."""
        notices = a1111.ignored_notices(body)
        if kind == "txt2img":
            return pipelines.Txt2ImgRequest, a1111.request_values(body, pipelines.Txt2ImgRequest, preset), notices
        # img2img: the first init image (at its own size), repainted where a mask says, else drawn over.
        opened = a1111.decode_image("init_images", body["init_images"][0] if body["init_images"] else "")
        recipe = read_recipe(opened)
        image = load_image(opened, self.studio.max_pixels, "init_images")
        if body.get("width") not in (None, image.width) or body.get("height") not in (None, image.height):
            notices.append(f"width and height were ignored: the init image ({image.width}×{image.height}) decides the result's size.")
        if len(body["init_images"]) > 1:
            notices.append("Only the first of init_images was used.")
        parent = recipe.image_id if recipe else None
        if body.get("mask"):
            mask = open_upload(a1111.decode_image("mask", body["mask"]), "mask")
            if body.get("inpainting_mask_invert"):
                mask = a1111.inverted(mask)
            values = a1111.request_values(body, pipelines.InpaintRequest, preset)
            return pipelines.InpaintRequest, dict(values, image=image, mask=mask, parent=parent), notices
        values = a1111.request_values(body, pipelines.SketchRequest, preset)
        return pipelines.SketchRequest, dict(values, sketch=image, parent=parent), notices

    def run(self, kind: str, request_type: type, values: dict[str, Any], iterations: int, user: str | None) -> list[Result]:
        """n_iter jobs of batch_size images, seeds following on (seed, seed + 1, … across them all), as
        AUTOMATIC1111 numbers them; what was made before an interrupt is returned."""
        with self._lock:
            if len(self._runs) >= self.queue_size:
                raise AtelierError(f"The queue is full ({self.queue_size} API requests); try again shortly.")
            run = Run(total=iterations, kind=kind)
            self._runs.append(run)
        try:
            results: list[Result] = []
            first = values.get("seed", -1)
            for i in range(iterations):
                if run.interrupted:
                    break
                if first == -1 and results:  # a random first seed is known once its job has run
                    first = results[0].recipes[0].seed
                # The first job takes the seed as sent (its checks refuse a bad one); the next follow on, wrapping.
                seed = first if i == 0 or first == -1 else (first + i * values.get("num_images", 1)) % (MAX_SEED + 1)
                job = self.studio.submit(request_type(**{**values, "seed": seed}), user=user)
                run.job, run.skipped = job, False
                while True:
                    event, ended = job.latest(POLL_SECONDS)
                    if event is not None:
                        run.latest = event
                        run.preview = event.preview or run.preview
                    if ended:
                        break
                try:
                    results.append(job.result())
                except Cancelled:  # skipped or interrupted: the rest goes on, or what was made is returned
                    pass
                run.done += 1
            return results
        finally:
            with self._lock:
                self._runs.remove(run)

    # -- progress and stopping --------------------------------------------------------------------------

    def progress(self, skip_current_image: bool = False) -> dict[str, Any]:
        with self._lock:
            run = self._runs[0] if self._runs else None
            waiting = sum(r.total - r.done for r in self._runs)
        if run is None:
            return {"progress": 0, "eta_relative": 0, "state": idle_state(), "current_image": None, "textinfo": None}
        event = run.latest
        fraction = (run.done + (event.step / event.total if event and event.total else 0)) / run.total
        done = min(max(fraction, 0.01), 1.0)
        elapsed = time.monotonic() - run.started
        image = None
        if run.preview is not None and not skip_current_image:
            buffer = io.BytesIO()
            run.preview.save(buffer, format="PNG")
            image = a1111.encode_png(buffer.getvalue())
        state = {"skipped": run.skipped, "interrupted": run.interrupted, "job": run.kind, "job_count": waiting,
                 "job_timestamp": run.stamp, "job_no": run.done,
                 "sampling_step": event.step if event else 0, "sampling_steps": event.total if event else 0}
        return {"progress": done, "eta_relative": elapsed / done - elapsed, "state": state,
                "current_image": image, "textinfo": event.message if event else None}

    def interrupt(self) -> dict:
        """Stops every API generation in flight; each answers with what it made so far."""
        with self._lock:
            for run in self._runs:
                run.interrupted = True
                if run.job is not None:
                    run.job.cancel()
        return {}

    def skip(self) -> dict:
        """Stops the current job of the oldest generation; its next n_iter job goes on."""
        with self._lock:
            if self._runs and self._runs[0].job is not None:
                self._runs[0].skipped = True
                self._runs[0].job.cancel()
        return {}

    # -- models and settings ----------------------------------------------------------------------------

    def checkpoint(self, text: Any, field: str = "sd_model_checkpoint") -> str:
        """The preset a client names (title, file name or "name [hash]"); refused with the names offered."""
        try:
            return self.studio.preset(a1111.checkpoint_name(text)).name
        except ValidationError as e:
            raise ValidationError(field, str(e).removeprefix("model: ")) from None

    def options(self) -> dict[str, Any]:
        preset = self.studio.preset(self.model)
        return {"sd_model_checkpoint": self.model, "sd_checkpoint_hash": a1111.model_hash(preset),
                "samples_format": "png", "sd_vae": "Automatic", "CLIP_stop_at_last_layers": 1}

    def set_options(self, options: dict[str, Any]) -> None:
        """sd_model_checkpoint picks the model later bodies are made with (it loads on its first job);
        the other settings are AUTOMATIC1111's own and are ignored."""
        if options.get("sd_model_checkpoint") is not None:
            self.model = self.checkpoint(options["sd_model_checkpoint"])

    def sd_models(self) -> list[dict[str, Any]]:
        """The models this server can run now (not those it would have to download offline)."""
        usable = [m.model for m in self.studio.residency() if m.state != "not available offline"]
        return [model_item(self.studio.preset(name)) for name in usable]

    def samplers(self) -> list[dict[str, Any]]:
        return [{"name": name, "aliases": [], "options": {}} for name in self.studio.preset(self.model).schedulers]

    def schedulers(self) -> list[dict[str, Any]]:
        names = ["automatic"] + (["karras"] if any(s.endswith(" Karras") for s in self.studio.preset(self.model).schedulers) else [])
        return [{"name": n, "label": n.capitalize(), "aliases": None, "default_rho": None, "need_inner_model": None}
                for n in names]

    def loras(self) -> list[dict[str, Any]]:
        return [{"name": name, "alias": name, "path": name, "metadata": {}} for name in self.studio.loras(self.model)]

    def prompt_styles(self) -> list[dict[str, Any]]:
        styles = self.studio.styles_for(self.model).values()
        return [{"name": s.name, "prompt": s.prompt, "negative_prompt": s.negative_prompt} for s in styles]

    def memory(self) -> dict[str, Any]:
        page, total, free = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_AVPHYS_PAGES")
        models = {m.model: {"state": m.state, "device": m.device, "megabytes": m.megabytes} for m in self.studio.residency()}
        return {"ram": {"free": free * page, "used": (total - free) * page, "total": total * page},
                "cuda": {}, "models": models}

    def png_info(self, text: str) -> dict[str, Any]:
        if not text.strip():
            return {"info": "", "items": {}, "parameters": {}}
        image = a1111.decode_image("image", text)
        items = {k: v for k, v in image.info.items() if isinstance(v, str)}
        parameters = items.pop("parameters", "")
        return {"info": parameters, "items": items, "parameters": a1111.parse_parameters(parameters) if parameters else {}}


def model_item(preset) -> dict[str, Any]:
    """A model as AUTOMATIC1111 lists it; a local folder by its name only, not its place on the server."""
    filename = os.path.basename(preset.source) if preset.is_local else preset.source
    return {"title": preset.name, "model_name": preset.name, "hash": a1111.model_hash(preset), "sha256": None,
            "filename": filename, "config": None}


def nothing() -> list:
    """What Atelier has of AUTOMATIC1111's VAE files, latent upscalers, scripts and extensions."""
    return []


def idle_state() -> dict[str, Any]:
    return {"skipped": False, "interrupted": False, "job": "", "job_count": 0, "job_timestamp": "0", "job_no": 0,
            "sampling_step": 0, "sampling_steps": 0}
