"""Faster sampling on CUDA, drawing the same pictures.

A small batch on a fast card is bound by the host, not the GPU: plain diffusers launches about a thousand
kernels for each U-Net step, one by one from Python, and the card waits between them. `speed_up` applies,
by name of the `--gpu-speed` setting:

- `eager`: convolutions in channels-last layout; fused QKV projections (one matmul per attention, the
  separate projections kept as views of the fused weight, so no memory is added); an SDXL autoencoder that
  decodes in half precision and redoes the decode in float32 only if half precision overflowed (diffusers
  otherwise converts the whole autoencoder to float32 and back for every image).
- `graphs`: eager, plus the U-Net's forward captured once per input shape as a CUDA graph and replayed:
  one launch per step instead of a thousand. The same kernels run on the same weights.
- `compile`: eager, plus `torch.compile` of the U-Net's repeated blocks (a slow first call).
- `compile-graphs`: both.
- `auto`: graphs at once (the first image within seconds), while the whole U-Net is compiled on a
  background thread (`torch.compile`, as diffusers' speed recipe) for each input shape the graphs capture;
  between two jobs, a shape whose compiled forward is warm has its graph recaptured over the fused kernels.
  Compiled artifacts are kept under the user's cache (`torch.compiler.save_cache_artifacts`), so after a
  restart on the same card and torch the compile is a cache read.

The manager calls this on CUDA only: on every other device nothing here runs and the pixels are exactly
those of plain diffusers. Every measure fails soft: one that cannot be applied is logged and skipped, and a
graph that cannot be captured leaves that shape to the ordinary forward.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

SPEEDS = ("off", "eager", "graphs", "compile", "compile-graphs", "auto")
MAX_GRAPHS = 4  # input shapes kept captured per U-Net (each new one costs a capture of about a step)
WARMUP_CALLS = 2  # eager calls on the capture stream before capturing: lazy library set-up stays out of the graph


def check_speed(speed: str) -> str:
    if speed not in SPEEDS:
        raise ValueError(f"gpu_speed must be one of {', '.join(SPEEDS)}; got {speed!r}")
    return speed


def speed_up(pipe, speed: str, cache: Path | None = None) -> tuple[str, ...]:
    """Apply the measures `speed` names to `pipe`'s modules in place; returns the names of those applied.

    Idempotent: a pipeline sharing modules with one already sped up (a dedicated inpainting U-Net beside a
    shared autoencoder) gets only what it still lacks.
    """
    check_speed(speed)
    if speed == "off":
        return ()
    applied: list[str] = []

    def attempt(name: str, fn: Callable[[], Any]) -> None:
        try:
            fn()
            applied.append(name)
        except Exception as e:  # a measure that does not fit this model is skipped, never fatal
            log.warning("GPU speed-up %r skipped: %s: %s", name, type(e).__name__, e)

    unet, vae = getattr(pipe, "unet", None), getattr(pipe, "vae", None)
    if unet is not None:
        attempt("channels-last", lambda: unet.to(memory_format=torch.channels_last))
        attempt("fused-qkv", lambda: fuse_qkv(unet))
        if speed in ("compile", "compile-graphs"):
            attempt("compile", lambda: compile_blocks(unet))
        if speed in ("graphs", "compile-graphs", "auto"):
            attempt("graphs", lambda: GraphedForward.install(unet))
        if speed == "auto" and graphed(unet) is not None:
            attempt("compile-in-background", lambda: BackgroundCompile.attach(
                graphed(unet), cache=None if cache is None else CompileCache(cache, unet)))
    if vae is not None:
        attempt("vae-channels-last", lambda: vae.to(memory_format=torch.channels_last))
        if "XL" in type(pipe).__name__ and vae.dtype == torch.float16 and vae.config.get("force_upcast", False):
            attempt("vae-half", lambda: HalfPrecisionVAE.install(vae))
    return tuple(applied)


def describe(pipe) -> dict[str, Any]:
    """What is applied to `pipe`'s modules now (read from the modules themselves), for benchmarks."""
    unet, vae = getattr(pipe, "unet", None), getattr(pipe, "vae", None)
    if unet is None:
        return {}
    graphs = graphed(unet)
    half = getattr(vae.__dict__.get("decode") if vae is not None else None, "__self__", None)
    return {
        "channels_last": unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last),
        "fused_qkv": is_fused(unet),
        "compiled": any(getattr(m, "_compiled_call_impl", None) is not None for m in unet.modules()),
        "graphs": None if graphs is None else dict(graphs.stats) | {"captured": len(graphs.graphs),
                                                                    "over_compiled": len(graphs.compiled_keys)},
        "background_compile": None if background(unet) is None else background(unet).state,
        "vae_half": {"fallbacks": half.fallbacks} if isinstance(half, HalfPrecisionVAE) else None,
    }


def background(unet) -> BackgroundCompile | None:
    graphs = graphed(unet)
    builder = getattr(graphs.on_capture, "__self__", None) if graphs is not None else None
    return builder if isinstance(builder, BackgroundCompile) else None


def between_jobs(pipe) -> None:
    """What waits for a job boundary: shapes compiled in the background are taken up (`auto`)."""
    graphs = graphed(getattr(pipe, "unet", None)) if getattr(pipe, "unet", None) is not None else None
    if graphs is not None:
        graphs.take_compiled()


def before_adapter(unet) -> None:
    """Ready the U-Net for an adapter that wraps its projections (a LoRA): graphs captured without it are
    forgotten, and fused projections are split (the adapter adapts the separate ones, which fusing kept as
    views of the fused weight). `after_adapter` fuses them again."""
    graphs = graphed(unet)
    if graphs is not None:
        graphs.reset()
        graphs.adapted = True  # the compiled forward was traced without the adapter: not captured meanwhile
    if is_fused(unet):
        unet.unfuse_qkv_projections()


def after_adapter(unet) -> None:
    """Put back what an adapter's unloading undid, and forget graphs captured before the U-Net changed.

    diffusers' `unload_ip_adapter` resets every attention processor to the unfused default.
    """
    graphs = graphed(unet)
    if graphs is not None:
        graphs.reset()
        graphs.adapted = False
    if any(getattr(m, "fused_projections", False) for m in unet.modules()):
        fuse_qkv(unet, again=True)


# -- feature reuse (DeepCache), opt-in: it changes the picture -------------------------------------------


@contextmanager
def feature_reuse(pipe, interval: int) -> Iterator[None]:
    """Within the block, `pipe`'s U-Net computes its deep features only every `interval` steps and reuses
    them between (DeepCache, Ma et al. 2024, through its authors' `DeepCacheSDHelper`): the other steps run
    only the outermost down and up blocks. 1 (or a pipeline without a U-Net) changes nothing.

    Graphs pause meanwhile (a captured graph would replay one branch whatever the step), and every forward
    the helper wrapped is put back as it was, so the next run is exact again.
    """
    unet = getattr(pipe, "unet", None)
    if interval <= 1 or unet is None:
        yield
        return
    from DeepCache import DeepCacheSDHelper

    with exclusive(unet):
        # Every module's own forward as it is now (graphs, offload hooks), put back as it was whatever happens.
        before = {m: m.__dict__.get("forward") for m in unet.modules()}
        graphs = graphed(unet)
        paused = graphs is not None and graphs.enabled
        try:
            if paused:
                graphs.enabled = False
            helper = DeepCacheSDHelper(pipe=pipe)
            helper.set_params(cache_interval=interval, cache_branch_id=0)
            helper.enable()
            yield
        finally:
            for module, forward in before.items():
                if forward is None:
                    module.__dict__.pop("forward", None)
                else:
                    module.forward = forward
            if paused:
                graphs.enabled = True


@contextmanager
def exclusive(unet) -> Iterator[None]:
    """The U-Net to this thread alone while its modules change (an adapter, feature reuse): a compile in the
    background (`auto`) must neither trace nor warm itself on a U-Net half changed, nor feed its own inputs
    into a run's reused features. Such a run waits for a warm-up in progress; nothing else does."""
    graphs = graphed(unet)
    if graphs is None:
        yield
        return
    with graphs.structure:
        yield


# -- fused QKV ------------------------------------------------------------------------------------------


def is_fused(unet) -> bool:
    from diffusers.models.attention_processor import FusedAttnProcessor2_0

    return any(isinstance(p, FusedAttnProcessor2_0) for p in unet.attn_processors.values())


@torch.no_grad()
def fuse_qkv(unet, again: bool = False) -> None:
    """One projection matmul per attention (query, key and value together; key and value for cross-attention).

    diffusers keeps the separate projections beside the fused one (adapters use them), which would add their
    size again; here they become views of the fused weight, so the memory stays that of the unfused model.
    """
    from diffusers.models.attention_processor import Attention

    if is_fused(unet) and not again:
        return
    unet.fuse_qkv_projections()
    for module in unet.modules():
        if isinstance(module, Attention) and getattr(module, "fused_projections", False):
            if getattr(module, "to_qkv", None) is not None and not module.is_cross_attention:
                _share(module.to_qkv, (module.to_q, module.to_k, module.to_v))
            elif getattr(module, "to_kv", None) is not None:
                _share(module.to_kv, (module.to_k, module.to_v))


def _share(fused: torch.nn.Linear, parts: tuple[torch.nn.Linear, ...]) -> None:
    sizes = [p.out_features for p in parts]
    if sum(sizes) != fused.out_features:
        return
    for name in ("weight", "bias"):
        whole = getattr(fused, name)
        if whole is None or any(getattr(p, name) is None for p in parts):
            continue
        for part, view in zip(parts, whole.data.split(sizes)):
            setattr(part, name, torch.nn.Parameter(view, requires_grad=getattr(part, name).requires_grad))


def compile_blocks(unet) -> None:
    """Regional compilation: one compiled transformer block reused everywhere (seconds, not minutes)."""
    if any(getattr(m, "_compiled_call_impl", None) is not None for m in unet.modules()):
        return
    unet.compile_repeated_blocks(fullgraph=True)
    graphs = graphed(unet)
    if graphs is not None:
        graphs.reset()  # graphs captured before replay the uncompiled kernels


# -- CUDA graphs ----------------------------------------------------------------------------------------


def graphed(module) -> GraphedForward | None:
    forward = getattr(module, "__dict__", {}).get("forward")
    return forward if isinstance(forward, GraphedForward) else None


def capture_cuda_graph(fn: Callable[[], torch.Tensor], pool, stream) -> tuple[Callable[[], None], torch.Tensor, Any]:
    """Capture `fn` (which reads only static buffers) as a CUDA graph; returns (replay, output, pool).

    The documented recipe: warm up on a side stream so that lazily created library handles and workspaces
    exist before capture, then capture on that stream into a memory pool shared by this module's graphs.
    The outer stream context restores the caller's stream even when capture fails.
    """
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(WARMUP_CALLS):
            fn()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool, stream=stream, capture_error_mode="thread_local"):
            output = fn()
    torch.cuda.current_stream().wait_stream(stream)
    return graph.replay, output, graph.pool()


def capture_by_recomputing(
    fn: Callable[[], torch.Tensor], pool, stream
) -> tuple[Callable[[], None], torch.Tensor, Any]:
    """A stand-in for `capture_cuda_graph` on a CPU, for checks: the output buffer is fixed and a replay
    recomputes it from the static buffers, so a wrapper that forgot to copy an input, or handed out its
    output buffer, shows as different pixels."""
    output = fn()

    def replay() -> None:
        output.copy_(fn())

    return replay, output, pool


# Tensor arguments a graph takes as static inputs; every other argument must be left at its default.
_TENSORS = ("sample", "timestep", "encoder_hidden_states", "timestep_cond")
_ADDED = ("text_embeds", "time_ids")  # SDXL's micro-conditioning; image embeddings (IP-Adapter) stay eager


class _Graph:
    def __init__(self, inputs: dict[str, torch.Tensor], run, replay: Callable[[], None], output: torch.Tensor):
        self.inputs, self.run, self.replay, self.output = inputs, run, replay, output


class GraphedForward:
    """A U-Net's forward that replays a captured graph when its inputs match one, else runs as usual.

    Installed as the module's own `forward` (nn.Module calls it like the class's), so every pipeline view
    sharing the U-Net uses it. A graph is captured per input signature (shapes, dtypes, which optional inputs
    are given), at most MAX_GRAPHS, least recently used dropped. Inputs are copied into the graph's static
    buffers and the output is copied out, so callers may keep what they get.

    Runs as usual (eagerly) when anything could make a replay wrong: gradients or autocast on, the module
    training, tensors not on a graph-capable device, or arguments a graph does not take (attention masks,
    ControlNet residuals, IP-Adapter image embeddings, cross-attention kwargs such as a LoRA scale).
    """

    def __init__(self, module: torch.nn.Module, capture=capture_cuda_graph, device_types: tuple[str, ...] = ("cuda",)):
        self.module = module
        self.eager = type(module).forward.__get__(module)  # the class's forward, bound
        self.signature = inspect.signature(type(module).forward)
        self.capture = capture
        self.device_types = device_types
        self.graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self.failed: set[tuple] = set()
        self.enabled = True
        self.stats: Counter = Counter()
        self.structure = threading.RLock()  # held while the U-Net's modules change (see `exclusive`)
        # A compiled forward (`auto`) and the input signatures it is warm for; those warm since the last job
        # are recaptured over it at the next `take_compiled` (between jobs, so no picture mixes the two).
        self.compiled: Callable | None = None
        self.compiled_keys: set[tuple] = set()
        self._warm: set[tuple] = set()
        self.adapted = False  # an adapter is on for this run (`before_adapter`)
        self.on_capture: Callable[[tuple, dict[str, torch.Tensor]], None] | None = None  # told each new shape
        self._pool = None
        self._stream = None

    @classmethod
    def install(cls, module: torch.nn.Module, **kw) -> GraphedForward:
        existing = graphed(module)
        if existing is not None:
            return existing
        forward = cls(module, **kw)
        module.forward = forward
        return forward

    @staticmethod
    def uninstall(module: torch.nn.Module) -> None:
        if graphed(module) is not None:
            del module.forward

    def reset(self) -> None:
        """Forget every graph (the module's weights or attention processors changed). A compiled forward
        stays: it reads the same parameters, and one compiled before such a change is never captured over
        after it (graphs are captured only outside adapters, and `exclusive` keeps compiles out of them)."""
        self.graphs.clear()
        self.failed.clear()
        self._pool = None

    @torch.no_grad()
    def verify(self) -> float | None:
        """How far a replay of the newest graph is from the ordinary forward on the same inputs: the largest
        absolute difference over the largest absolute output (0.0 when identical). For benchmarks."""
        if not self.graphs:
            return None
        graph = next(reversed(self.graphs.values()))
        graph.replay()
        replayed = graph.output.clone()
        eager = graph.run()
        return float((replayed.float() - eager.float()).abs().max() / eager.float().abs().max().clamp_min(1e-12))

    # -- the call ---------------------------------------------------------------------------------------

    def compiled_for(self, key: tuple, forward: Callable) -> None:
        """`forward` (compiled, the same weights) is warm for the input signature `key`. From another thread."""
        with self.structure:
            self.compiled = forward
            self._warm.add(key)

    def take_compiled(self) -> int:
        """Between jobs: the graphs of the shapes newly compiled are dropped, to be recaptured over the
        compiled forward at their next call. Returns how many."""
        with self.structure:
            warm, self._warm = self._warm, set()
        for key in warm:
            self.compiled_keys.add(key)
            self.graphs.pop(key, None)
            self.stats["adopted"] += 1
        return len(warm)

    def __call__(self, *args, **kwargs):
        bound = self.signature.bind(self.module, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop(next(iter(self.signature.parameters)))  # self
        return_dict = arguments.pop("return_dict", True)
        tensors = self._static_inputs(arguments)
        if tensors is None:
            self.stats["eager"] += 1
            return self.eager(*args, **kwargs)
        key = tuple((name, tuple(t.shape), t.dtype, str(t.device)) for name, t in tensors.items())
        graph = self.graphs.get(key)
        if graph is None:
            if key in self.failed:
                self.stats["eager"] += 1
                return self.eager(*args, **kwargs)
            graph = self._capture(key, tensors)
            if graph is None:
                self.stats["eager"] += 1
                return self.eager(*args, **kwargs)
        self.graphs.move_to_end(key)
        for name, value in tensors.items():
            graph.inputs[name].copy_(value)
        graph.replay()
        self.stats["replays"] += 1
        sample = graph.output.clone()
        if not return_dict:
            return (sample,)
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        return UNet2DConditionOutput(sample=sample)

    def _static_inputs(self, arguments: dict[str, Any]) -> dict[str, torch.Tensor] | None:
        """The call's tensors by name, or None where this call must run eagerly."""
        if not self.enabled or self.module.training or torch.is_grad_enabled() or torch.is_inference_mode_enabled():
            return None
        added = arguments.pop("added_cond_kwargs", None) or {}
        if arguments.pop("cross_attention_kwargs", None):
            return None
        if set(added) - set(_ADDED) or any(not torch.is_tensor(v) for v in added.values()):
            return None
        tensors = {}
        for name, value in arguments.items():
            if name in _TENSORS and torch.is_tensor(value):
                tensors[name] = value
            elif value is not None:  # a timestep given as a number, an attention mask, residuals…
                return None
        if not {"sample", "timestep", "encoder_hidden_states"} <= set(tensors):
            return None
        tensors.update({f"added_cond_kwargs.{k}": added[k] for k in sorted(added)})
        device = tensors["sample"].device
        if device.type not in self.device_types or any(t.device != device for t in tensors.values()):
            return None
        if torch.is_autocast_enabled(device.type):
            return None
        return tensors

    def _capture(self, key: tuple, tensors: dict[str, torch.Tensor]) -> _Graph | None:
        inputs = {name: t.clone() for name, t in tensors.items()}
        # Over the compiled kernels where they are warm for this shape; else the ordinary forward's (a new
        # shape never waits for a compile: it is compiled in the background, if at all).
        compiled = self.compiled is not None and key in self.compiled_keys and not self.adapted
        forward = self.compiled if compiled else self.eager

        def run() -> torch.Tensor:
            added = {k.split(".", 1)[1]: v for k, v in inputs.items() if k.startswith("added_cond_kwargs.")}
            plain = {k: v for k, v in inputs.items() if not k.startswith("added_cond_kwargs.")}
            return forward(**plain, added_cond_kwargs=added or None, return_dict=False)[0]

        try:
            if self._stream is None and tensors["sample"].device.type == "cuda":
                self._stream = torch.cuda.Stream(tensors["sample"].device)
            replay, output, self._pool = self.capture(run, self._pool, self._stream)
        except Exception as e:  # left to the ordinary forward; the run goes on
            if forward is not self.eager:  # the compiled forward failed here: this shape keeps the ordinary one
                self.compiled_keys.discard(key)
                log.warning("Capture over the compiled U-Net failed for %s; capturing the ordinary forward: %s: %s",
                            key, type(e).__name__, e)
                return self._capture(key, tensors)
            self.failed.add(key)
            self.stats["capture_failures"] += 1
            log.warning("CUDA graph capture failed for %s; that shape runs eagerly: %s: %s", key, type(e).__name__, e)
            if self.stats["capture_failures"] >= 2:
                self.enabled = False
            return None
        self.stats["captures"] += 1
        graph = self.graphs[key] = _Graph(inputs, run, replay, output)
        if self.on_capture is not None and key not in self.compiled_keys:
            self.on_capture(key, {name: t.clone() for name, t in inputs.items()})
        while len(self.graphs) > MAX_GRAPHS:
            self.graphs.popitem(last=False)
        return graph


# -- the whole U-Net compiled in the background, adopted when warm ---------------------------------------


def user_cache() -> Path:
    """Atelier's folder in the user's cache (XDG's, else ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "atelier"


def compile_whole(forward: Callable) -> Callable:
    """The U-Net's forward compiled as one graph: diffusers' documented recipe, minus its own CUDA graphs
    (the graphs here capture the compiled kernels instead, one launch per step either way)."""
    return torch.compile(forward, mode="max-autotune-no-cudagraphs", fullgraph=True)


class CompileCache:
    """Compiled artifacts of one U-Net architecture on one card and torch, kept across restarts (torch's
    portable "mega-cache"; a save holds what this process compiled, so each architecture has its file)."""

    def __init__(self, folder: Path, unet):
        device = unet.device
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        tag = "".join(c if c.isalnum() or c in ".-" else "_" for c in f"{name}-torch{torch.__version__}")
        config = json.dumps({k: v for k, v in dict(unet.config).items() if not k.startswith("_")}, sort_keys=True,
                            default=str)
        self.path = Path(folder) / f"{tag}-{unet.dtype}-{hashlib.sha256(config.encode()).hexdigest()[:12]}.bin"

    def load(self) -> bool:
        """Make earlier compiles' results available to this process's; False when there are none yet."""
        if not self.path.is_file():
            return False
        try:
            loaded = torch.compiler.load_cache_artifacts(self.path.read_bytes()) is not None
        except Exception as e:
            loaded = False
            log.warning("%s: %s", type(e).__name__, e)
        if not loaded:  # a stale or damaged cache only costs a full compile
            log.warning("Compiled cache %s not loaded: the U-Net is compiled afresh", self.path)
        return loaded

    def save(self) -> None:
        artifacts = torch.compiler.save_cache_artifacts()
        if artifacts is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.path.parent, suffix=".part", delete=False) as part:
            part.write(artifacts[0])
        Path(part.name).replace(self.path)  # whole or not at all, for the next start


class BackgroundCompile:
    """Compiles a graphed U-Net's forward on a thread of its own: once, then warm for each input shape the
    graphs capture (in order; each shape's first call compiles it), while the jobs go on with the graphs.
    Each warm-up holds the U-Net's `structure` lock (no adapter or feature reuse meanwhile). A shape that
    fails to compile is logged and keeps the ordinary forward; `stop` (the model unloaded) ends the thread
    before its next warm-up."""

    def __init__(self, graphs: GraphedForward, compile: Callable[[Callable], Callable] = compile_whole,
                 cache: CompileCache | None = None):
        self.graphs, self.compile, self.cache = graphs, compile, cache
        self.thread: threading.Thread | None = None
        self.queue: queue.Queue = queue.Queue()
        self.stopped = threading.Event()
        self.state = "waiting"  # → compiling → compiled (some shape warm) | failed (none); → stopped
        self.seconds: float | None = None  # from the first shape's capture to its compiled forward's warmth
        self.cache_loaded = False
        self._compiled: Callable | None = None

    @classmethod
    def attach(cls, graphs: GraphedForward, **kw) -> BackgroundCompile:
        existing = getattr(graphs.on_capture, "__self__", None)
        if isinstance(existing, cls):
            return existing
        builder = cls(graphs, **kw)
        graphs.on_capture = builder.request
        return builder

    def request(self, key: tuple, inputs: dict[str, torch.Tensor]) -> None:
        """Compile (or warm) for this shape, in the background."""
        if self.stopped.is_set():
            return
        self.queue.put((key, inputs))
        if self.thread is None:
            self.state = "compiling"
            self.thread = threading.Thread(target=self._work, name="atelier-compile", daemon=True)
            self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.queue.put(None)

    def _work(self) -> None:
        began = time.perf_counter()
        if self.cache is not None:
            self.cache_loaded = self.cache.load()
        while not self.stopped.is_set():
            item = self.queue.get()
            if item is None:
                break
            key, inputs = item
            if self._warm_up(key, inputs) and self.seconds is None:
                self.seconds = time.perf_counter() - began
                log.info("U-Net compiled in the background in %.1f s (%s); taken up from the next job",
                         self.seconds, "from the cache" if self.cache_loaded else "no cache yet")
            if self.queue.empty() and self.state == "compiling":
                self.state = "failed"
        if self.stopped.is_set():
            self.state = "stopped"

    def _warm_up(self, key: tuple, inputs: dict[str, torch.Tensor]) -> bool:
        added = {k.split(".", 1)[1]: v for k, v in inputs.items() if k.startswith("added_cond_kwargs.")}
        plain = {k: v for k, v in inputs.items() if not k.startswith("added_cond_kwargs.")}
        try:
            device = inputs["sample"].device
            stream = torch.cuda.Stream(device) if device.type == "cuda" else None
            with self.graphs.structure:
                if self._compiled is None:
                    self._compiled = self.compile(self.graphs.eager)
                with torch.no_grad(), torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                    for _ in range(2):  # the first call compiles this shape, the second runs it as compiled
                        self._compiled(**plain, added_cond_kwargs=added or None, return_dict=False)
                if stream is not None:
                    stream.synchronize()
        except Exception as e:
            log.warning("Background compile failed for %s; that shape keeps the graphs of the ordinary forward: "
                        "%s: %s", key, type(e).__name__, e)
            return False
        self.graphs.compiled_for(key, self._compiled)
        self.state = "compiled"
        if self.cache is not None:
            self.cache.save()
        return True


# -- the autoencoder in half precision ------------------------------------------------------------------


class HalfPrecisionVAE:
    """An fp16 SDXL autoencoder that decodes in fp16, falling back to float32 only where the result overflowed.

    SDXL's autoencoder is marked `force_upcast`: diffusers then converts it to float32 for every decode and
    back afterwards, and decodes at float32 speed and memory. Here that flag is cleared; the decode runs in
    half precision and is checked (one check per decode, where the image is about to be read anyway), and
    only a decode with infinities or NaNs is redone in float32. Encoding (image-to-image, inpainting) keeps
    diffusers' float32 path exactly.
    """

    def __init__(self, vae):
        self.vae = vae
        self.fallbacks = 0

    @classmethod
    def install(cls, vae) -> HalfPrecisionVAE:
        existing = getattr(vae.__dict__.get("decode"), "__self__", None)
        if isinstance(existing, cls):
            return existing
        half = cls(vae)
        vae.register_to_config(force_upcast=False)
        vae.decode = half.decode
        vae.encode = half.encode
        return half

    def _in_float32(self, method: str, x: torch.Tensor, *args, **kwargs):
        dtype = self.vae.dtype
        self.vae.to(torch.float32)
        try:
            return getattr(type(self.vae), method)(self.vae, x.float(), *args, **kwargs)
        finally:
            self.vae.to(dtype)

    def decode(self, z: torch.Tensor, *args, **kwargs):
        out = type(self.vae).decode(self.vae, z, *args, **kwargs)
        sample = out[0] if isinstance(out, tuple) else out.sample
        if not bool(torch.isfinite(sample).all()):
            self.fallbacks += 1
            out = self._in_float32("decode", z, *args, **kwargs)
        return out

    def encode(self, x: torch.Tensor, *args, **kwargs):
        return self._in_float32("encode", x, *args, **kwargs)
