"""GPU speed-ups: off on the CPU (pixels exactly plain diffusers'), and each measure's logic checked on the CPU.

CUDA graphs cannot be captured here, so the graph wrapper is driven with a stand-in capture that computes
from the static buffers the way a replay would: a wrapper that forgot to copy an input, reused an output or
took an argument it cannot replay would draw different pixels.
"""

import threading
import time

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline

from bench.architectures import random_pipeline
from pipelines import Cancelled, Registry, Txt2ImgRequest, ValidationError
from pipelines.device.acceleration import (
    MAX_GRAPHS,
    SPEEDS,
    BackgroundCompile,
    CompileCache,
    GraphedForward,
    HalfPrecisionVAE,
    after_adapter,
    before_adapter,
    between_jobs,
    capture_by_recomputing,
    describe,
    feature_reuse,
    fuse_qkv,
    graphed,
    speed_up,
)
from pipelines.device.local import local_studio
from pipelines.device.manager import PipelineManager, module_bytes
from pipelines.device.sampling import step_callback
from tests.conftest import TINY, as_array, tiny_registry

REQUEST = dict(model=TINY, prompt="a red circle", seed=5, steps=3, width=64, height=64, scheduler="Euler a")


def graph(module) -> GraphedForward:
    return GraphedForward.install(module, capture=capture_by_recomputing, device_types=("cpu",))


def plain_images(pipe, prompt: str, seeds: list[int], steps: int, size: int, stop_after: int = 0) -> list[np.ndarray]:
    """The pipeline called directly (with `stop_after`, stopped after that many steps, as Stop does)."""
    stop = {"callback_on_step_end": step_callback(None, lambda: True)} if stop_after else {}
    out = pipe(
        prompt=[prompt] * len(seeds),
        negative_prompt=[""] * len(seeds),
        width=size,
        height=size,
        num_inference_steps=steps,
        guidance_scale=5.0,
        generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
        **stop,
    )
    return [as_array(image) for image in out.images]


@pytest.mark.parametrize("speed", SPEEDS)
def test_every_gpu_speed_is_off_on_the_cpu_and_draws_plain_diffusers_pixels(tiny_model_dir, speed):
    manager = PipelineManager(tiny_registry(tiny_model_dir), device="cpu", dtype="float32", gpu_speed=speed)
    studio = local_studio(manager)
    request = Txt2ImgRequest(**REQUEST, guidance_scale=5.0, num_images=2)
    ours = [as_array(image) for image in studio.txt2img(request).result().images]

    pipe = manager.pipeline(TINY, "txt2img")
    assert manager.gpu_speed == "off" and not any(describe(pipe).values())
    plain = StableDiffusionPipeline.from_pretrained(tiny_model_dir, dtype=torch.float32)
    plain.set_progress_bar_config(disable=True)
    assert all((a == b).all() for a, b in zip(ours, plain_images(plain, "a red circle", [5, 6], 3, 64)))


def test_an_unknown_speed_is_refused():
    with pytest.raises(ValueError, match="gpu_speed"):
        PipelineManager(Registry(), device="cpu", gpu_speed="warp")


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_graph_replays_draw_the_same_pixels_as_the_ordinary_forward(family):
    pipe = random_pipeline(family, tiny=True)
    pipe.set_progress_bar_config(disable=True)
    expected = plain_images(pipe, "a red circle", [1, 2], 2, 64)
    expected_alone = plain_images(pipe, "a red circle", [1], 2, 64)
    forward = graph(pipe.unet)
    for _ in range(2):
        assert all((a == b).all() for a, b in zip(plain_images(pipe, "a red circle", [1, 2], 2, 64), expected))
    # One capture for the shape, every step of both runs replayed; a new batch size is a new graph.
    assert forward.stats["captures"] == 1 and forward.stats["replays"] == 2 * 2 and forward.stats["eager"] == 0
    alone = plain_images(pipe, "a red circle", [1], 2, 64)
    assert forward.stats["captures"] == 2 and (alone[0] == expected_alone[0]).all()
    assert forward.verify() == 0.0


def test_graphs_leave_to_the_ordinary_forward_what_they_cannot_replay():
    unet = random_pipeline("sd15", tiny=True).unet
    forward = graph(unet)
    x, t, text = torch.randn(2, 4, 8, 8), torch.tensor(10.0), torch.randn(2, 77, 32)
    with torch.no_grad():
        first = unet(x, t, text).sample
        second = unet(x, t, text).sample
        assert first is not second and torch.equal(first, second)  # copied out: callers may keep it
        first.add_(1)
        assert torch.equal(unet(x, t, text).sample, second)
        before = dict(forward.stats)
        unet(x, 10, text)  # a timestep given as a number
        unet(x, t, text, cross_attention_kwargs={"scale": 0.5})
        unet(x, t, text, encoder_attention_mask=torch.ones(2, 77))
        unet(x, t, text, added_cond_kwargs={"image_embeds": [torch.randn(2, 4)]})
    assert forward.stats["eager"] - before.get("eager", 0) == 4 and forward.stats["captures"] == 1
    out = unet(x, t, text).sample  # gradients on: eager, so backward works
    assert out.requires_grad and forward.stats["captures"] == 1


def test_graphs_are_bounded_forgotten_on_reset_and_a_failed_capture_falls_back():
    unet = random_pipeline("sd15", tiny=True).unet
    forward = graph(unet)
    text = torch.randn(1, 77, 32)
    with torch.no_grad():
        for batch in range(1, MAX_GRAPHS + 3):
            unet(torch.randn(batch, 4, 8, 8), torch.tensor(5.0), text.expand(batch, -1, -1)).sample
        assert len(forward.graphs) == MAX_GRAPHS and forward.stats["captures"] == MAX_GRAPHS + 2
        forward.reset()
        assert not forward.graphs

        def broken(fn, pool, stream):
            raise RuntimeError("operation not permitted when stream is capturing")

        forward.capture = broken
        x = torch.randn(1, 4, 8, 8)
        expected = forward.eager(x, torch.tensor(5.0), text).sample
        assert torch.equal(unet(x, torch.tensor(5.0), text).sample, expected)
        assert forward.stats["capture_failures"] == 1 and forward.enabled
        unet(torch.randn(3, 4, 8, 8), torch.tensor(5.0), text.expand(3, -1, -1))
        assert not forward.enabled  # two failures: graphs off for this module, the runs go on
    GraphedForward.uninstall(unet)
    assert graphed(unet) is None and unet.forward.__func__ is type(unet).forward


def test_fused_qkv_adds_no_memory_keeps_outputs_and_survives_an_adapter_reset():
    from diffusers.models.attention_processor import AttnProcessor2_0

    pipe = random_pipeline("sdxl", tiny=True)
    unet = pipe.unet
    x, t, text = torch.randn(2, 4, 8, 8), torch.tensor(10.0), torch.randn(2, 77, 64)
    added = {"text_embeds": torch.randn(2, 32), "time_ids": torch.randn(2, 6)}
    with torch.no_grad():
        expected = unet(x, t, text, added_cond_kwargs=added).sample
        size = module_bytes(pipe)
        fuse_qkv(unet)
        assert module_bytes(pipe) == size  # the separate projections are views of the fused weight
        attn = next(m for m in unet.modules() if hasattr(m, "to_qkv"))
        assert attn.to_q.weight.untyped_storage().data_ptr() == attn.to_qkv.weight.untyped_storage().data_ptr()
        torch.testing.assert_close(unet(x, t, text, added_cond_kwargs=added).sample, expected, rtol=1e-4, atol=1e-4)

        forward = graph(unet)
        unet(x, t, text, added_cond_kwargs=added)
        unet.set_attn_processor(AttnProcessor2_0())  # what unload_ip_adapter does
        after_adapter(unet)
        assert describe(pipe)["fused_qkv"] and not forward.graphs and module_bytes(pipe) == size
        torch.testing.assert_close(unet(x, t, text, added_cond_kwargs=added).sample, expected, rtol=1e-4, atol=1e-4)


def test_speed_up_applies_each_measure_once_and_the_pipeline_still_draws():
    pipe = random_pipeline("sdxl", tiny=True)
    pipe.set_progress_bar_config(disable=True)
    expected = plain_images(pipe, "a blue square", [3], 2, 64)
    applied = speed_up(pipe, "graphs")
    assert applied == ("channels-last", "fused-qkv", "graphs", "vae-channels-last")  # float32: no half decode
    assert speed_up(pipe, "graphs") == applied and graphed(pipe.unet) is not None
    got = plain_images(pipe, "a blue square", [3], 2, 64)  # graphs are CUDA-only: the forward runs as usual
    assert np.abs(got[0].astype(int) - expected[0]).max() <= 2
    assert describe(pipe)["graphs"] == {"eager": 2, "captured": 0, "over_compiled": 0}


def test_half_precision_decode_falls_back_to_float32_only_on_overflow():
    pipe = random_pipeline("sdxl", tiny=True, dtype=torch.float16)
    vae = pipe.vae
    assert speed_up(pipe, "eager")[-1] == "vae-half" and not vae.config.force_upcast
    half = vae.decode.__self__
    assert isinstance(half, HalfPrecisionVAE) and HalfPrecisionVAE.install(vae) is half
    z = torch.randn(1, 4, 8, 8, dtype=torch.float16)
    with torch.no_grad():
        image = vae.decode(z).sample
        assert image.dtype == torch.float16 and half.fallbacks == 0
        vae.decoder.conv_in.weight.mul_(1000)  # activations past half precision's 65504, as SDXL's can be
        overflow = vae.decode(z * 100).sample
        assert half.fallbacks == 1 and torch.isfinite(overflow).all() and overflow.dtype == torch.float32
        latents = vae.encode(torch.rand(1, 3, 64, 64, dtype=torch.float16)).latent_dist.mean
        assert latents.dtype == torch.float32  # encoding keeps diffusers' float32 path
    assert vae.dtype == torch.float16
    assert describe(pipe)["vae_half"] == {"fallbacks": 1}


def test_an_sdxl_pipeline_decodes_in_half_precision_without_converting_the_autoencoder(monkeypatch):
    pipe = random_pipeline("sdxl", tiny=True, dtype=torch.float16)
    pipe.set_progress_bar_config(disable=True)
    speed_up(pipe, "eager")
    conversions = []
    monkeypatch.setattr(pipe.vae, "to", lambda *a, **k: conversions.append((a, k)))
    image = pipe(
        prompt="a red circle",
        negative_prompt="",
        height=64,
        width=64,
        num_inference_steps=1,
        generator=torch.Generator("cpu").manual_seed(0),
    ).images[0]
    assert image.size == (64, 64) and conversions == [] and pipe.vae.decode.__self__.fallbacks == 0


# -- Fast draft (feature reuse): opt-in, and gone without a trace after its run -------------------------


def deep_calls(unet) -> list[int]:
    """A counter of the U-Net's deepest block really running (a reused step returns its cached output)."""
    calls = []
    unet.mid_block.resnets[0].register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_feature_reuse_runs_the_deep_blocks_every_nth_step_and_leaves_the_unet_exact_after():
    pipe = random_pipeline("sd15", tiny=True)
    pipe.set_progress_bar_config(disable=True)
    calls = deep_calls(pipe.unet)
    exact = plain_images(pipe, "a red circle", [1, 2], 6, 64)
    assert len(calls) == 6  # every step (both guidance halves in one call)
    forward = graph(pipe.unet)
    plain_images(pipe, "a red circle", [1, 2], 6, 64)  # captured
    replays, before = forward.stats["replays"], len(calls)
    with feature_reuse(pipe, 3):
        drafted = plain_images(pipe, "a red circle", [1, 2], 6, 64)
    assert len(calls) - before == 2  # steps 0 and 3 only
    assert forward.stats["replays"] == replays  # graphs paused: a replay would ignore which step it is
    assert any((a != b).any() for a, b in zip(drafted, exact))  # it changes the picture, as its label says
    # Afterwards: the graphs back on, no forward of the helper's left behind, the same pixels as before.
    assert graphed(pipe.unet) is forward and forward.enabled
    assert [m for m in pipe.unet.modules() if "forward" in m.__dict__] == [pipe.unet]
    assert all((a == b).all() for a, b in zip(plain_images(pipe, "a red circle", [1, 2], 6, 64), exact))
    assert forward.stats["replays"] > replays


def test_feature_reuse_is_undone_when_the_run_is_stopped():
    pipe = random_pipeline("sd15", tiny=True)
    pipe.set_progress_bar_config(disable=True)
    forward = graph(pipe.unet)
    with pytest.raises(Cancelled), feature_reuse(pipe, 2):
        plain_images(pipe, "a red circle", [1], 4, 64, stop_after=1)
    assert [m for m in pipe.unet.modules() if "forward" in m.__dict__] == [pipe.unet] and forward.enabled


def test_fast_draft_through_the_studio_is_recorded_only_when_on_and_bounded(tiny_studio):
    base = dict(REQUEST, guidance_scale=5.0, steps=4)
    exact = tiny_studio.txt2img(Txt2ImgRequest(**base)).result()
    drafted = tiny_studio.txt2img(Txt2ImgRequest(**base, feature_reuse=2)).result()
    assert "feature_reuse" not in exact.recipes[0].settings and drafted.recipes[0].settings["feature_reuse"] == 2
    assert (as_array(exact.images[0]) != as_array(drafted.images[0])).any()
    again = tiny_studio.txt2img(Txt2ImgRequest(**base)).result()
    assert (as_array(again.images[0]) == as_array(exact.images[0])).all()
    for bad in (0, 6):
        with pytest.raises(ValidationError) as refusal:
            tiny_studio.txt2img(Txt2ImgRequest(**base, feature_reuse=bad))
        assert refusal.value.field == "feature_reuse"


# -- auto: graphs at once, the whole U-Net compiled in the background and adopted when warm -------------


class SlowCompile:
    """A stand-in for torch.compile: the same forward, its calls counted, its warm-up held until `ready`."""

    def __init__(self):
        self.ready, self.calls = threading.Event(), 0

    def __call__(self, eager):
        def compiled(*args, **kwargs):
            self.ready.wait(timeout=60)
            self.calls += 1
            return eager(*args, **kwargs)

        return compiled


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_background_compile_is_taken_up_between_jobs_and_no_run_waits_for_it():
    pipe = random_pipeline("sd15", tiny=True)
    pipe.set_progress_bar_config(disable=True)
    exact = plain_images(pipe, "a red circle", [1], 2, 64)
    forward, compile = graph(pipe.unet), SlowCompile()
    builder = BackgroundCompile.attach(forward, compile=compile)
    assert BackgroundCompile.attach(forward) is builder  # once per U-Net
    for _ in range(2):  # runs go on with the graphs while it compiles
        assert all((a == b).all() for a, b in zip(plain_images(pipe, "a red circle", [1], 2, 64), exact))
    assert builder.state == "compiling" and forward.stats["replays"] == 4 and compile.calls == 0
    compile.ready.set()
    wait_for(lambda: builder.state == "compiled")
    assert compile.calls == 2  # warmed on the first run's inputs
    plain_images(pipe, "a red circle", [1], 2, 64)
    assert compile.calls == 2  # never taken up in the middle of a job
    between_jobs(pipe)
    assert all((a == b).all() for a, b in zip(plain_images(pipe, "a red circle", [1], 2, 64), exact))
    # Recaptured over the compiled forward at the first call after the job boundary.
    assert forward.stats["adopted"] == 1 and forward.stats["captures"] == 2 and compile.calls > 2
    builder.stop()
    builder.thread.join(timeout=60)
    assert builder.state == "stopped"


def test_a_fast_draft_or_an_adapter_waits_for_a_warm_up_and_then_runs_without_the_compiled_forward():
    pipe = random_pipeline("sd15", tiny=True)
    pipe.set_progress_bar_config(disable=True)
    forward, compile = graph(pipe.unet), SlowCompile()
    BackgroundCompile.attach(forward, compile=compile)
    plain_images(pipe, "a red circle", [1], 2, 64)  # the first capture starts the compile, whose warm-up waits
    entered = threading.Event()

    def draft():
        with feature_reuse(pipe, 2):
            entered.set()

    worker = threading.Thread(target=draft)
    worker.start()
    time.sleep(0.3)
    assert not entered.is_set()  # the warm-up holds the U-Net: the draft must not change it under the trace
    compile.ready.set()
    worker.join(timeout=60)
    assert entered.is_set()
    between_jobs(pipe)
    drafted = compile.calls
    with feature_reuse(pipe, 2):
        plain_images(pipe, "a red circle", [1], 2, 64)
    before_adapter(pipe.unet)
    plain_images(pipe, "a red circle", [1], 2, 64)
    assert compile.calls == drafted  # neither a draft nor an adapted U-Net runs the compiled forward
    after_adapter(pipe.unet)
    plain_images(pipe, "a red circle", [1], 2, 64)
    assert compile.calls > drafted


def test_a_failed_background_compile_leaves_the_graphs_as_they_were(caplog):
    pipe = random_pipeline("sd15", tiny=True)
    pipe.set_progress_bar_config(disable=True)
    exact = plain_images(pipe, "a red circle", [1], 2, 64)
    forward = graph(pipe.unet)

    def broken(eager):
        raise RuntimeError("no compiler here")

    builder = BackgroundCompile.attach(forward, compile=broken)
    plain_images(pipe, "a red circle", [1], 2, 64)
    wait_for(lambda: builder.state == "failed")
    assert "no compiler here" in caplog.text
    between_jobs(pipe)
    assert all((a == b).all() for a, b in zip(plain_images(pipe, "a red circle", [1], 2, 64), exact))
    assert forward.stats["adopted"] == 0 and forward.enabled


def test_unloading_a_model_stops_its_background_compile(tiny_model_dir):
    manager = PipelineManager(tiny_registry(tiny_model_dir), device="cpu", dtype="float32")
    pipe = manager.pipeline(TINY, "txt2img")
    builder = BackgroundCompile.attach(graph(pipe.unet), compile=SlowCompile())
    builder.request(("shape",), {})  # no inputs to warm up on: fails, logged, and the thread waits for more
    manager.unload(TINY)
    builder.thread.join(timeout=60)
    assert builder.state == "stopped" and not builder.thread.is_alive()


def test_compiled_artifacts_are_kept_for_the_next_start_and_a_damaged_cache_only_costs_a_compile(tmp_path, caplog):
    unet = random_pipeline("sd15", tiny=True).unet
    cache = CompileCache(tmp_path / "compiled", unet)
    assert not cache.load()  # nothing yet
    torch.compile(lambda x: torch.sin(x) * 2 + 1, fullgraph=True)(torch.randn(8))
    cache.save()
    assert cache.path.is_file() and cache.path.stat().st_size > 0 and "torch" in cache.path.name
    assert CompileCache(tmp_path / "compiled", unet).load()  # the next start reads it
    other = random_pipeline("sdxl", tiny=True).unet
    assert CompileCache(tmp_path / "compiled", other).path != cache.path  # one file per architecture
    cache.path.write_bytes(b"not a cache")
    assert not CompileCache(tmp_path / "compiled", unet).load() and "not loaded" in caplog.text


def test_auto_on_a_cpu_is_off_like_every_gpu_speed(tiny_model_dir, tmp_path):
    manager = PipelineManager(tiny_registry(tiny_model_dir), device="cpu", dtype="float32", gpu_speed="auto",
                              compile_cache=tmp_path)
    pipe = manager.pipeline(TINY, "txt2img")
    assert manager.gpu_speed == "off" and graphed(pipe.unet) is None and not any(tmp_path.iterdir())


def test_the_log_says_what_the_first_result_cost_after_a_start(tiny_model_dir, caplog):
    studio = local_studio(PipelineManager(tiny_registry(tiny_model_dir), device="cpu", dtype="float32"))
    with caplog.at_level("INFO", logger="pipelines.device.local"):
        studio.txt2img(Txt2ImgRequest(**REQUEST)).result()
        studio.txt2img(Txt2ImgRequest(**REQUEST)).result()
    said = [r.getMessage() for r in caplog.records if "first result in" in r.getMessage()]
    assert len(said) == 1 and "loading" in said[0]  # once per model loaded, not every run
    studio.close()
