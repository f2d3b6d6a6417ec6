"""Every setting is declared once: the page's control, the HTTP endpoint and validation, and the recipe
agree with the declaration on name, range and default, for every field of every registered task."""

import math

import pytest
from PIL import Image

from pipelines import TASKS, Limits, Registry, Txt2ImgRequest, UpscaleRequest, ValidationError, settings_of
from pipelines.front.fields import setting
from pipelines.front.requests import Request
from ui.app import build_page

MODEL = "shapes"


def picture(size: int = 64) -> Image.Image:
    return Image.new("RGB", (size, size), (200, 200, 200))


def square_mask(size: int = 256) -> Image.Image:
    """Wide enough to be shrunk by the most a request may shrink it."""
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (size // 8, size // 8, size - size // 8, size - size // 8))
    return mask


def drawing(size: int = 64) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    image.paste((35, 80, 230), (8, 8, 32, 32))
    return image


# What each task needs besides its settings to be a valid request (uploads, a text).
NEEDS = {
    "txt2img": lambda: dict(prompt="a red circle", width=64, height=64),
    "variations": lambda: dict(image=picture()),
    "morph": lambda: dict(prompt="a red circle", prompt_b="a blue circle", width=64, height=64),
    "inpaint": lambda: dict(prompt="a red circle", image=picture(256), mask=square_mask()),
    "outpaint": lambda: dict(prompt="a red circle", image=picture(), left=8, top=8),
    "sketch": lambda: dict(prompt="a blue square", sketch=drawing()),
    "upscale": lambda: dict(image=picture()),
}


@pytest.fixture(scope="module")
def page(studio):
    demo, _ = build_page(studio, MODEL)
    return demo


def endpoint(demo, task: str) -> tuple[dict, dict]:
    """The task's HTTP endpoint: its components by parameter name, and what its API page says of each."""
    (fn,) = [f for f in demo.fns.values() if f.api_name == task]
    info = demo.get_api_info()["named_endpoints"][f"/{task}"]["parameters"]
    return dict(zip(fn.input_keyword_names, fn.inputs)), {p["parameter_name"]: p for p in info}


def test_every_registered_task_is_walked():
    assert set(NEEDS) == set(TASKS.names)


@pytest.mark.parametrize("task", TASKS.names)
def test_page_api_and_declaration_agree_on_every_setting(page, studio, task):
    request_type = TASKS.get(task).request
    limits, preset = studio.limits(MODEL), studio.preset(MODEL)
    controls, api = endpoint(page, task)
    declared = settings_of(request_type)
    assert declared, f"{task} declares no setting"
    for name, s in declared.items():
        assert name in controls and name in api, f"{task}: the endpoint has no parameter {name!r}"
        control = controls[name]
        default = getattr(preset, s.preset) if s.preset else s.default
        if s.kind not in ("prompt", "text"):  # a prompt box's words are the tab's own
            assert control.label == s.label, (task, name)
        if s.kind in ("int", "size", "float", "seed"):
            assert (control.minimum, control.maximum) == s.bounds(limits), (task, name)
        if s.kind in ("int", "size", "float"):
            assert control.step == s.step, (task, name)
        if s.kind == "choice":
            assert [value for _, value in control.choices] == list(s.options(limits)), (task, name)
            assert control.value in s.options(limits), (task, name)
        elif s.kind != "prompt":
            assert control.value == default, (task, name, control.value, default)
            assert api[name]["parameter_default"] == default, (task, name)


def valid(task: str, limits: Limits, **values) -> Request:
    request_type = TASKS.get(task).request
    return request_type(**{"model": MODEL, **NEEDS[task](), **values}).validated(limits)


def outside(s, low, high) -> list:
    if s.kind in ("int", "size", "seed"):
        return [low - 1, high + 1, 1.5, None, True]
    return [low - 0.01, high + 0.01, math.nan, math.inf, "many", None]


@pytest.mark.parametrize("task", TASKS.names)
def test_validation_accepts_the_declared_range_and_refuses_outside_it_by_name(studio, task):
    limits = studio.limits(MODEL)
    for name, s in settings_of(TASKS.get(task).request).items():
        if s.kind in ("int", "size", "float", "seed"):
            low, high = s.bounds(limits)
            for value in (low, high):
                assert getattr(valid(task, limits, **{name: value}), name) == value, (task, name, value)
            for value in outside(s, low, high):
                with pytest.raises(ValidationError) as refusal:
                    valid(task, limits, **{name: value})
                assert refusal.value.field == name, (task, name, value, str(refusal.value))
        elif s.kind == "choice":
            # Another model has other limits; the embedded model has no image-prompt adapter.
            for value in (MODEL,) if name == "model" else s.options(limits):
                if (name, value) != ("mode", "embedding"):
                    assert getattr(valid(task, limits, **{name: value}), name) == value
            with pytest.raises(ValidationError) as refusal:
                valid(task, limits, **{name: "pickle"})
            assert refusal.value.field == name
        elif s.kind == "bool":
            for value in (True, False):
                assert getattr(valid(task, limits, **{name: value}), name) is value
            with pytest.raises(ValidationError) as refusal:
                valid(task, limits, **{name: "maybe"})
            assert refusal.value.field == name


@pytest.mark.parametrize("task", TASKS.names)
def test_the_recipe_records_every_setting_declared_recorded_with_its_value(studio, task):
    # Text to image records its hires settings where the cascade ran, and feature reuse where it was on.
    request = valid(task, studio.limits(MODEL), **({"hires": True, "feature_reuse": 2} if task == "txt2img" else {}))
    recorded = {name for name, s in settings_of(type(request)).items() if s.recorded}
    fields = request.recipe_fields()
    assert recorded <= set(fields) or task == "morph" and recorded - set(fields) == {"depth"}, (task, fields)
    if task == "txt2img":
        plain = valid(task, studio.limits(MODEL)).recipe_fields()
        assert not [name for name in plain if name.startswith("hires")] and "guidance_rescale" in plain
        assert "feature_reuse" not in plain
    for name in recorded & set(fields):
        assert fields[name] == getattr(request, name)


def test_the_automatic1111_names_are_unique_per_task():
    for task in TASKS:
        names = [s.a1111 for s in settings_of(task.request).values() if s.a1111]
        assert len(names) == len(set(names)), task.name
    assert settings_of(Request)["guidance_scale"].a1111 == "cfg_scale"
    assert settings_of(Request)["num_images"].a1111 == "batch_size"


def test_a_setting_added_to_a_request_is_checked_without_another_line():
    """The recipe for a new setting is one line in the request type: the declaration alone checks it."""
    from dataclasses import dataclass

    from pipelines import Txt2ImgRequest

    @dataclass(frozen=True, kw_only=True)
    class WithDetail(Txt2ImgRequest):
        detail: float = setting(0.5, "float", "Detail", minimum=0.0, maximum=1.0, step=0.1)

    limits = Limits(models=(MODEL,), min_size=64, max_size=512)
    assert WithDetail(model=MODEL, prompt="x", width=64, height=64).validated(limits).recipe_fields()["detail"] == 0.5
    with pytest.raises(ValidationError, match="detail: 1.5 is out of range 0–1"):
        WithDetail(model=MODEL, prompt="x", width=64, height=64, detail=1.5).validated(limits)


def test_a_models_limits_are_one_view_rebuilt_only_when_its_files_change(tmp_path):
    """Validation reads one view of the model (limits, LoRAs, styles), not a bag rebuilt on every submit."""
    import os

    from pipelines import Registry, Style, StyleBook
    from tests.conftest import make_studio

    folder = tmp_path / "loras"
    folder.mkdir()
    studio = make_studio(Registry(lora_folders=(("mine", str(folder)),)), styles=StyleBook(tmp_path / "styles.json"))
    first = studio.limits(MODEL)
    assert studio.limits(MODEL) is first
    studio.styles.save(Style.from_dict({"name": "mine", "prompt": "{prompt}, at night"}))
    second = studio.limits(MODEL)
    assert second is not first and "mine" in [text[0] for text in second.styles]
    assert studio.limits(MODEL) is second
    (folder / "new.safetensors").write_bytes(b"not a LoRA")  # unreadable: logged and left out, but looked at
    assert studio.limits(MODEL) is not second
    third = studio.limits(MODEL)
    os.utime(folder / "new.safetensors", ns=(1, 1))
    assert studio.limits(MODEL) is not third


@pytest.mark.parametrize("task", TASKS.names)
def test_each_endpoint_is_named_and_described_from_its_declarations(page, task):
    """What the API page and MCP tools show of a task: its name, and each setting in the page's words."""
    (fn,) = [f for f in page.fns.values() if f.api_name == task]  # one endpoint of that name, public
    assert fn.name == task and fn.api_visibility == "public"
    for name, s in settings_of(TASKS.get(task).request).items():
        assert f"    {name}: {s.label}" in fn.fn.__doc__, (task, name)


@pytest.mark.parametrize("request_type", [UpscaleRequest, Txt2ImgRequest])
def test_the_stage_defaults_a_cascade_runs_with_are_the_cascading_models(request_type):
    """A sent picture's cascade (and Hires from Python) upscales at the request's own defaults, not the
    page's: for the model that cascades by default they must be its stage's, declared on its preset."""
    cascading = [p for p in Registry().presets if p.cascade]
    assert cascading
    for name, s in settings_of(request_type).items():
        if s.preset and s.preset.startswith("upscale_"):
            assert all(s.default == getattr(p, s.preset) for p in cascading), (request_type.__name__, name)
