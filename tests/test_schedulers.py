"""One scheduler table: validation, the registry and the UI read it; every name a preset offers runs on a
tiny pipeline of that preset's family, and a run's scheduler never outlives it."""

import numpy as np
import pytest

from pipelines import ModelPreset, Registry, Txt2ImgRequest, ValidationError
from pipelines.device.sampling import fresh_scheduler
from pipelines.front.requests import Limits
from pipelines.front.schedulers import NAMES, SCHEDULERS
from tests.conftest import TINY, as_array, make_studio, tiny_preset, tiny_registry

OFFERED = [(p.name, name) for p in Registry().presets for name in p.schedulers]


def test_the_table_is_what_validation_and_presets_use():
    assert Limits().schedulers == NAMES == tuple(SCHEDULERS)
    assert {name for _, name in OFFERED} == set(NAMES)  # no name in the table that no preset offers
    for preset in Registry().presets:
        assert preset.scheduler in preset.schedulers
    with pytest.raises(ValueError, match="unknown scheduler 'Heun'"):
        ModelPreset(name="x", label="x", source="x", family="sd15", schedulers=("Euler", "Heun"))


@pytest.fixture(scope="module")
def family_studio(tiny_model_dir, tiny_xl_model_dir):
    """Each built-in preset's family and offered schedulers, over a tiny pipeline of that family
    (the embedded model is small enough to be its own)."""
    folders = {"shapes": None, "sd15": tiny_model_dir, "sd21": tiny_model_dir, "sdxl": tiny_xl_model_dir}
    stand_ins = [
        preset
        if folders[preset.family] is None
        else tiny_preset(
            folders[preset.family],
            name=f"tiny-{preset.name}",
            family=preset.family,
            schedulers=preset.schedulers,
            scheduler=preset.scheduler,
        )
        for preset in Registry().presets
    ]
    return make_studio(Registry(tuple(stand_ins)))


@pytest.mark.parametrize("preset,scheduler", OFFERED, ids=[f"{p}:{s}" for p, s in OFFERED])
def test_every_offered_scheduler_runs_on_its_family(family_studio, preset, scheduler):
    model = preset if preset == "shapes" else f"tiny-{preset}"
    request = Txt2ImgRequest(
        model=model, prompt="a red circle", scheduler=scheduler, steps=3, width=64, height=64, seed=1
    )
    job = family_studio.submit(request)
    steps = [e.step for e in job.events() if e.total and e.step]
    image = as_array(job.result().images[0])
    assert steps[-1] == 3 and image.shape == (64, 64, 3)
    assert np.isfinite(image).all() and image.std() > 0  # a picture, not a blank or NaN-black frame


def test_a_scheduler_a_model_does_not_offer_is_refused(tiny_model_dir):
    studio = make_studio(tiny_registry(tiny_model_dir, schedulers=("Euler a", "Euler")))
    with pytest.raises(ValidationError, match="scheduler: 'UniPC' is not one of: Euler a, Euler"):
        studio.submit(Txt2ImgRequest(model=TINY, prompt="x", scheduler="UniPC", width=64, height=64))


def test_a_fresh_scheduler_per_run_configured_like_the_model(tiny_model_dir):
    studio = make_studio(tiny_registry(tiny_model_dir))
    pipe = studio.runner.manager.pipeline(TINY, "txt2img")
    own = pipe.scheduler
    a, b = fresh_scheduler("Euler a", own.config), fresh_scheduler("Euler a", own.config)
    assert a is not b and a is not own and a.config.beta_end == own.config.beta_end
    karras = fresh_scheduler("DPM++ 2M Karras", own.config)
    assert type(karras).__name__ == "DPMSolverMultistepScheduler" and karras.config.use_karras_sigmas
    studio.submit(
        Txt2ImgRequest(model=TINY, prompt="x", scheduler="DPM++ 2M Karras", steps=2, width=32, height=32)
    ).result()
    assert pipe.scheduler is own  # the model's own scheduler is back after the run


def test_a_runs_scheduler_never_leaks_into_the_next(tiny_model_dir):
    """Euler after DPM++ 2M Karras equals Euler alone: the next scheduler is built from the model's own
    config, not from the last run's (which would carry its Karras sigmas over)."""
    request = dict(model=TINY, prompt="a red circle", seed=3, steps=4, width=64, height=64)
    alone = make_studio(tiny_registry(tiny_model_dir)).submit(Txt2ImgRequest(**request, scheduler="Euler")).result()
    studio = make_studio(tiny_registry(tiny_model_dir))
    studio.submit(Txt2ImgRequest(**request, scheduler="DPM++ 2M Karras")).result()
    after = studio.submit(Txt2ImgRequest(**request, scheduler="Euler")).result()
    assert (as_array(after.images[0]) == as_array(alone.images[0])).all()


def test_interleaved_schedulers_do_not_disturb_each_other(tiny_model_dir):
    studio = make_studio(tiny_registry(tiny_model_dir))
    req = dict(model=TINY, prompt="a red circle", seed=3, steps=4, width=64, height=64)
    alone_a = studio.submit(Txt2ImgRequest(**req, scheduler="Euler a")).result().images[0]
    alone_b = studio.submit(Txt2ImgRequest(**req, scheduler="UniPC")).result().images[0]
    jobs = [studio.submit(Txt2ImgRequest(**req, scheduler=s)) for s in ("Euler a", "UniPC", "Euler a", "UniPC")]
    results = [as_array(j.result().images[0]) for j in jobs]
    assert (results[0] == as_array(alone_a)).all() and (results[2] == as_array(alone_a)).all()
    assert (results[1] == as_array(alone_b)).all() and (results[3] == as_array(alone_b)).all()
