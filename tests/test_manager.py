"""The manager: one copy of the weights for every task, budgets, pins, and nothing left after a failure."""

import sys
import threading

import numpy as np
import psutil
import pytest
import torch

from pipelines import AtelierError, ModelPreset, Registry, Txt2ImgRequest
from pipelines.device.manager import KINDS, PipelineManager
from tests.conftest import TINY, make_studio, tiny_registry


def test_every_pipeline_kind_shares_the_same_modules(tiny_model_dir):
    manager = PipelineManager(tiny_registry(tiny_model_dir), device="cpu", dtype="float32")
    base = manager.pipeline(TINY, "txt2img")
    for kind in KINDS:
        view = manager.pipeline(TINY, kind)
        assert view.unet is base.unet and view.vae is base.vae and view.text_encoder is base.text_encoder
        assert manager.pipeline(TINY, kind) is view  # derived once, then cached
    assert [r.model for r in manager.resident()] == [TINY]
    with pytest.raises(ValueError, match="unknown pipeline kind"):
        manager.pipeline(TINY, "upscale")


def test_dtypes_stay_as_loaded_after_from_pipe(tiny_model_dir):
    manager = PipelineManager(tiny_registry(tiny_model_dir), device="cpu", dtype="bfloat16")
    for kind in KINDS:
        view = manager.pipeline(TINY, kind)
        assert view.unet.dtype == view.vae.dtype == view.text_encoder.dtype == torch.bfloat16


class DummyPipe:
    """Only what the manager touches on a CPU: components with weights of a known size."""

    def __init__(self, megabytes: int):
        self.unet = torch.nn.Linear(megabytes * 2**18, 1, bias=False)  # 4 bytes × 2^18 = 1 MiB per unit
        self.components = {"unet": self.unet}

    def set_progress_bar_config(self, **kw):
        pass


def dummy_manager(budget_mb: int, sizes: dict[str, int], fail: set[str] = frozenset()):
    presets = tuple(ModelPreset(name=n, label=n, source=n, family="sd15") for n in sizes)
    loads = []

    def loader(preset, device, dtype, report=None):
        loads.append(preset.name)
        if preset.name in fail:
            raise RuntimeError("disk on fire")
        return DummyPipe(sizes[preset.name])

    manager = PipelineManager(Registry(presets), device="cpu", memory_budget_bytes=budget_mb * 2**20, loader=loader)
    return manager, loads


def test_lru_eviction_under_a_budget():
    manager, loads = dummy_manager(5, {"a": 2, "b": 2, "c": 2})
    manager.resident_model("a")
    manager.resident_model("b")
    manager.resident_model("a")  # a is now the most recently used
    manager.resident_model("c")  # needs room: b goes, not a
    assert {r.model for r in manager.resident()} == {"a", "c"}
    manager.resident_model("a")
    assert loads == ["a", "b", "c"]  # switching back to a resident model costs no load


def test_pinned_models_are_never_evicted():
    manager, _ = dummy_manager(5, {"a": 2, "b": 2, "c": 2})
    manager.resident_model("a")
    manager.pin("a")
    manager.resident_model("b")
    manager.resident_model("c")
    assert {r.model for r in manager.resident()} == {"a", "c"}
    assert next(r for r in manager.resident() if r.model == "a").pinned


def test_budget_zero_keeps_one_model():
    manager, _ = dummy_manager(0, {"a": 1, "b": 1})
    manager.resident_model("a")
    manager.resident_model("b")
    assert [r.model for r in manager.resident()] == ["b"]


def test_a_failed_load_leaves_nothing_behind_and_the_next_load_works():
    manager, loads = dummy_manager(10, {"a": 1, "bad": 1}, fail={"bad"})
    with pytest.raises(AtelierError, match="could not be loaded"):
        manager.resident_model("bad")
    assert manager.resident() == [] and not manager.is_resident("bad")
    manager.resident_model("a")
    assert [r.model for r in manager.resident()] == ["a"]


def test_a_failed_switch_keeps_the_resident_model():
    manager, loads = dummy_manager(0, {"a": 1, "bad": 1}, fail={"bad"})
    manager.resident_model("a")
    with pytest.raises(AtelierError, match="could not be loaded"):
        manager.resident_model("bad")
    assert [r.model for r in manager.resident()] == ["a"]
    manager.resident_model("a")
    assert loads == ["a", "bad"]  # the working model was never unloaded, so never loaded again


def test_a_switch_that_does_not_fit_beside_the_resident_model_unloads_it_first():
    presets = tuple(ModelPreset(name=n, label=n, source=n, family="sd15") for n in ("small", "big"))
    manager = None

    def loader(preset, device, dtype, report=None):
        if preset.name == "big" and manager.is_resident("small"):
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return DummyPipe(1)

    manager = PipelineManager(Registry(presets), device="cpu", loader=loader)
    manager.resident_model("small")
    manager.resident_model("big")
    assert [r.model for r in manager.resident()] == ["big"]


def test_the_lock_serialises_accelerator_work(tiny_model_dir):
    manager = PipelineManager(tiny_registry(tiny_model_dir), device="cpu", dtype="float32")
    with manager.lock:
        other = threading.Thread(target=lambda: manager.pipeline(TINY, "txt2img"))
        other.start()
        other.join(0.5)
        assert other.is_alive()  # waits for the lock
    other.join(30)
    assert not other.is_alive()


def test_out_of_memory_while_loading_is_a_clear_message_and_leaves_nothing():
    presets = (ModelPreset(name="big", label="Big model", source="big", family="sd15"),
               ModelPreset(name="small", label="Small model", source="small", family="sd15"))

    def loader(preset, device, dtype, report=None):
        if preset.name == "big":
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return DummyPipe(1)

    manager = PipelineManager(Registry(presets), device="cpu", loader=loader)
    with pytest.raises(AtelierError, match="Not enough accelerator memory to load Big model"):
        manager.resident_model("big")
    assert manager.resident() == []
    manager.resident_model("small")
    assert [r.model for r in manager.resident()] == ["small"]


def test_residency_rows_say_what_a_switch_costs_and_unload_frees(tiny_model_dir):
    studio = make_studio(tiny_registry(tiny_model_dir))
    state = lambda: {r.model: r.state for r in studio.residency()}  # noqa: E731
    assert state()[TINY] == "load from disk" and state()["sd15"] == "not available offline"  # the tests are offline
    assert [r.model for r in studio.residency()] == list(studio.model_names)
    studio.txt2img(Txt2ImgRequest(model=TINY, prompt="x", steps=1, width=64, height=64)).result()
    row = next(r for r in studio.residency() if r.model == TINY)
    assert row.state == "resident" and row.megabytes > 0 and row.dtype == "float32"
    studio.pin(TINY, True)
    assert next(r for r in studio.residency() if r.model == TINY).pinned
    assert studio.unload(TINY) and state()[TINY] == "load from disk"


def test_a_model_not_on_disk_says_how_much_it_downloads_or_that_it_cannot_be_had(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    online = {m.model: m for m in make_studio().residency()}
    assert online["sd15"].state == "download" and online["sd15"].download_gb == 2 * 2.1  # float32 on a CPU
    assert online["sdxl"].download_gb > online["sd15"].download_gb
    offline = PipelineManager(Registry(), device="cpu", dtype="float16", offline=True)
    assert {m.model: m.state for m in offline.models()}["sdxl"] == "not available offline"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's heap")
def test_memory_freed_by_a_job_goes_back_to_the_system():
    process = psutil.Process()
    pieces = [np.ones(7_500) for _ in range(4_000)]  # 240 MB in heap-sized pieces (60 kB each)
    last = pieces[-1]  # the newest piece stays: the heap cannot simply shrink from its top
    del pieces
    held = process.memory_info().rss
    PipelineManager.return_freed_memory()
    assert held - process.memory_info().rss > 100 * 2**20
    del last


def test_every_job_hands_freed_memory_back_even_a_failed_one(tiny_model_dir, monkeypatch):
    studio = make_studio(tiny_registry(tiny_model_dir))
    calls = []
    monkeypatch.setattr(studio.runner.manager, "return_freed_memory", lambda: calls.append(1))
    request = Txt2ImgRequest(model=TINY, prompt="a red circle", steps=2, width=32, height=32)
    studio.txt2img(request).result()
    assert calls == [1]
    unet = studio.runner.manager.pipeline(TINY, "txt2img").unet

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(unet, "forward", broken)
    with pytest.raises(Exception, match="injected failure"):
        studio.txt2img(request).result()
    assert calls == [1, 1]
