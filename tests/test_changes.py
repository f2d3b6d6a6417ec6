"""Per-run pipeline changes: applied in order before a run, undone in reverse after it, failed or not."""

import pytest

import pipelines.device.changes as changes
from pipelines import Txt2ImgRequest
from tests.conftest import TINY, make_studio, tiny_registry


def test_changes_are_entered_in_order_and_left_in_reverse_also_on_failure(monkeypatch):
    from contextlib import contextmanager

    log = []

    def change(name):
        @contextmanager
        def apply(run):
            log.append(f"+{name}")
            try:
                yield
            finally:
                log.append(f"-{name}")

        return apply

    monkeypatch.setattr(changes, "CHANGES", (change("a"), change("b"), change("c")))
    with pytest.raises(RuntimeError):
        with changes.applied(run=None):
            log.append("run")
            raise RuntimeError("the run failed")
    assert log == ["+a", "+b", "+c", "run", "-c", "-b", "-a"]


def test_a_failed_run_leaves_the_shared_pipeline_as_it_found_it(tiny_model_dir, monkeypatch):
    studio = make_studio(tiny_registry(tiny_model_dir), vae_tiling_pixels=32 * 32)
    pipe = studio.runner.manager.pipeline(TINY, "txt2img")
    own = pipe.scheduler
    seen = {}

    def broken(*args, **kwargs):
        seen.update(scheduler=type(pipe.scheduler).__name__, tiled=pipe.vae.use_tiling)
        raise RuntimeError("injected failure")

    monkeypatch.setattr(pipe.unet, "forward", broken)
    request = Txt2ImgRequest(model=TINY, prompt="x", scheduler="DPM++ 2M Karras", steps=2, width=64, height=64)
    with pytest.raises(RuntimeError, match="injected failure"):
        studio.submit(request).result()
    assert seen == {"scheduler": "DPMSolverMultistepScheduler", "tiled": True}  # both were on during the run
    assert pipe.scheduler is own and not pipe.vae.use_tiling  # and both are undone after it


def test_the_image_prompt_adapter_is_detached_and_the_speed_ups_put_back_after_its_run(tmp_path, monkeypatch):
    """Unloading the adapter resets the attention processors: with GPU speed-ups on, they are restored."""
    import pipelines.device.acceleration
    from pipelines import ModelPreset
    from pipelines.front.registry import IPAdapter

    log = []

    class Pipe:
        unet = object()

        def load_ip_adapter(self, folder, **kw):
            log.append(("load", kw["weight_name"]))

        def set_ip_adapter_scale(self, scale):
            log.append(("scale", scale))

        def unload_ip_adapter(self):
            log.append(("unload",))

    class Request:
        def ip_adapter_scale(self):
            return 0.7

    monkeypatch.setattr(pipelines.device.acceleration, "after_adapter", lambda unet: log.append(("after", unet is Pipe.unet)))
    adapter = IPAdapter(str(tmp_path), "models", "ip.safetensors", "models/image_encoder")
    preset = ModelPreset(name="m", label="M", source="m", family="sd15", ip_adapter=adapter)
    for speed, after in (("graphs", [("after", True)]), ("off", [])):
        log.clear()
        with pytest.raises(RuntimeError):
            with changes.ip_adapter(changes.Run(Pipe(), Request(), preset, 0, True, speed)):
                raise RuntimeError("the run failed")
        assert log == [("load", "ip.safetensors"), ("scale", 0.7), ("unload",), *after], speed
