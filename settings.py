"""Settings: one dataclass is the single source of truth for the command line and `ATELIER_*`.

Each field's metadata `help` is both its `--flag` help and its documentation; the variable name is the
field name upper-cased with `ATELIER_` in front. Precedence: flag, then variable, then default.

This is the composition root's concern (`app.py`): the server's own settings (address, password,
browser, queue) stay here, and the back end receives only the values it uses, as plain arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

DEFAULT_GPU_SPEED = "graphs"  # chosen by bench/gpu.py (BENCHMARKS.md, "GPU path")


def _setting(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class Settings:
    host: str = _setting("127.0.0.1", "address to listen on; 0.0.0.0 serves the whole network (set auth)")
    port: int = _setting(7860, "port to listen on")
    model: str = _setting("shapes", "model shown first: a preset name (see --list-models)")
    model_dirs: str = _setting("", "extra local diffusers folders, 'name=path,name2=path2' (server side only)")
    lora_dirs: str = _setting(
        "", "LoRA files (.safetensors) or folders of them, 'name=path,name2=folder' (server side; the browser picks by name)"
    )
    styles_file: str = _setting("", "where saved styles are kept (JSON); empty: atelier/styles.json in the user's data folder")
    device: str = _setting("auto", "auto (CUDA, then Apple MPS, then CPU), cuda, cuda:1, mps or cpu")
    dtype: str = _setting("auto", "auto (float16 on CUDA, float32 elsewhere), float16, bfloat16 or float32",
                          choices=("auto", "float16", "bfloat16", "float32"))
    outputs: str = _setting(
        "outputs", "folder where every result is saved, with its Library; empty: nothing is written to disk, each "
                   "browser session keeps its results in memory until it ends"
    )
    queue_size: int = _setting(16, "requests waiting at most; more are answered 'queue full'")
    queue_poll_ms: int = _setting(20, "how often the queue looks for new requests while it has none, in ms, and "
                                      "for progress ten times less often (Gradio's own is 1: its wake-ups take CPU "
                                      "from the model on a small machine)")
    auth: str = _setting("", "'user:password' (or several, 'ann:pw1,bob:pw2') required to open the app; each person "
                             "sees only their own images; empty for none")
    memory_budget_gb: float = _setting(0.0, "memory for resident models before the least recently used is unloaded; 0 = one model")
    max_pixels: int = _setting(
        1024 * 1024, "largest image (width × height) a request may ask for; a larger upload is scaled down to it "
                     "(a file over 40,000,000 pixels is refused unopened)"
    )
    max_images: int = _setting(8, "most images in one request")
    vae_tiling_pixels: int = _setting(
        1024 * 1024, "images larger than this (width × height) are decoded tile by tile, in a fraction of the memory"
    )
    gpu_speed: str = _setting(
        DEFAULT_GPU_SPEED,
        "CUDA only: off (plain diffusers), eager (channels-last, fused QKV, half-precision SDXL decode), graphs "
        "(eager + the U-Net replayed as CUDA graphs), compile (eager + torch.compile, slow first call), compile-graphs, "
        "auto (graphs at once; the whole U-Net compiled in the background and taken up when ready, its compiled "
        "artifacts kept in the user's cache for the next start)",
        choices=("off", "eager", "graphs", "compile", "compile-graphs", "auto"),  # pipelines.device.acceleration.SPEEDS
    )
    offline: bool = _setting(False, "never contact the Hugging Face Hub; presets not on disk say how to fetch them")
    model_process: bool = _setting(
        True, "run the models in a process of their own beside the server's, out of reach of its threads "
              "(--no-model-process: in the server's process; never a process of their own on ZeroGPU)"
    )
    open_browser: bool = _setting(True, "open the app in a browser tab on start (local use)")
    mcp: bool = _setting(False, "also serve the studio's tasks and the Library search to AI assistants as an MCP server")
    public_demo: bool = _setting(False, "public-demo limits: nothing saved, smaller queue; on by itself on a Space")
    # Content Credentials (C2PA): every result signed as AI-made, with what made it and what it came from.
    credentials: bool = _setting(True, "sign every result with Content Credentials (C2PA); --no-credentials saves them unsigned")
    c2pa_cert: str = _setting("", "the studio's own signing certificate chain (PEM, leaf first); empty: a key made on "
                                  "this computer on first start (in atelier/c2pa/ in the user's data folder)")
    c2pa_key: str = _setting("", "the private key (PEM) of --c2pa-cert")
    c2pa_trust: str = _setting("", "PEM file of trust anchors: credentials signed under them are shown as trusted")
    # The cluster (issue 17): where the device work runs when it does not run in this process.
    cluster: str = _setting(
        "",
        "where models run: empty = in this process; 'local' = a Ray instance started here; "
        "else a Ray address ('auto', 'ray://host:10001')",
    )
    replicas: int = _setting(0, "model workers on the cluster; 0 = one per GPU (one where there is no GPU)")
    models_per_replica: int = _setting(
        1, "models each worker keeps loaded; above 1 needs --memory-budget-gb (per worker)"
    )
    min_replicas: int = _setting(0, "autoscaling: fewest model workers (with --max-replicas)")
    max_replicas: int = _setting(0, "autoscaling: most model workers; 0 = a fixed --replicas")

    @property
    def accounts(self) -> list[tuple[str, str]]:
        """`auth` parsed: (user, password) pairs."""
        pairs = [p for p in self.auth.split(",") if p.strip()]
        out = []
        for pair in pairs:
            user, sep, password = pair.strip().partition(":")
            if not sep or not user or not password:
                raise ValueError("auth: expected user:password, got an entry without both")
            out.append((user, password))
        return out

    @property
    def model_folders(self) -> dict[str, str]:
        """`model_dirs` parsed: name → folder."""
        return _pairs("model_dirs", self.model_dirs)

    @property
    def lora_folders(self) -> dict[str, str]:
        """`lora_dirs` parsed: name → file or folder."""
        return _pairs("lora_dirs", self.lora_dirs)

    @property
    def styles_path(self) -> str:
        """The styles file: as set, or in the user's data folder."""
        return self.styles_file or os.path.join(data_folder(), "styles.json")

    @property
    def signing_folder(self) -> str:
        """Where the signing key made on first start is kept: in the user's data folder, never in outputs."""
        return os.path.join(data_folder(), "c2pa")


def data_folder() -> str:
    """Atelier's folder in the user's data folder ($XDG_DATA_HOME, else ~/.local/share)."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "atelier")


def _pairs(setting: str, text: str) -> dict[str, str]:
    """'name=path,name2=path2' → {name: path}."""
    out = {}
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, path = pair.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"{setting}: expected name=path, got {pair!r}")
        out[name.strip()] = path.strip()
    return out


def env_name(name: str) -> str:
    return f"ATELIER_{name.upper()}"


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _convert(f: dataclasses.Field, text: str):
    kind = type(f.default)
    value = _parse_bool(text) if kind is bool else kind(text)
    if value not in f.metadata.get("choices", (value,)):
        raise ValueError(f"expected one of {', '.join(f.metadata['choices'])}, got {text!r}")
    return value


def _shown(default) -> str:
    """A default as the help shows it."""
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default) if default != "" else "empty"


def argument_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="app.py", description="Atelier: a browser studio that turns words into images.")
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (default: {_shown(f.default)}) [env {env_name(f.name)}]"
        # No argparse default: a flag left out is absent, so the variable or the dataclass default applies.
        if isinstance(f.default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        else:
            p.add_argument(flag, type=type(f.default), default=argparse.SUPPRESS, help=help_text,
                           choices=f.metadata.get("choices"))
    p.add_argument("--list-models", action="store_true", help="print the model presets and exit")
    return p


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> tuple[Settings, argparse.Namespace]:
    """Settings from flags over `ATELIER_*` variables over defaults; a Space switches on public_demo."""
    environ = os.environ if environ is None else environ
    args = argument_parser().parse_args(argv)
    values = {}
    for f in dataclasses.fields(Settings):
        if f.name in args:
            values[f.name] = getattr(args, f.name)
        elif env_name(f.name) in environ:
            try:
                values[f.name] = _convert(f, environ[env_name(f.name)])
            except ValueError as e:
                raise SystemExit(f"{env_name(f.name)}: {e}") from None
    on_space = bool(environ.get("SPACE_ID"))
    if on_space and "public_demo" not in values:
        values["public_demo"] = True
    settings = Settings(**values)
    check_cluster(settings)
    if not 1 <= settings.queue_poll_ms <= 1000:  # 0 would spin on a core; seconds would hold every request back
        raise SystemExit(f"--queue-poll-ms: expected 1 to 1000, got {settings.queue_poll_ms}")
    if settings.public_demo:
        # A public demo keeps nobody's images on disk, queues less and never opens a browser.
        settings = dataclasses.replace(
            settings,
            outputs="" if "outputs" not in values else settings.outputs,
            queue_size=min(settings.queue_size, 8),
            open_browser=False,
            host="0.0.0.0" if on_space and "host" not in values else settings.host,
        )
    return settings, args


def check_cluster(settings: Settings) -> None:
    """Refuse cluster settings that cannot work, naming the flag, before anything starts (an address
    is checked by trying it)."""
    for name in ("replicas", "min_replicas", "max_replicas"):
        if getattr(settings, name) < 0:
            raise SystemExit(f"--{name.replace('_', '-')}: expected 0 or more, got {getattr(settings, name)}")
    if settings.models_per_replica < 1:
        raise SystemExit(f"--models-per-replica: expected 1 or more, got {settings.models_per_replica}")
    if settings.models_per_replica > 1 and not settings.memory_budget_gb:
        raise SystemExit("--models-per-replica above 1 needs --memory-budget-gb: without it a worker holds one model")
    if settings.max_replicas and settings.min_replicas > settings.max_replicas:
        raise SystemExit(f"--min-replicas {settings.min_replicas} is above --max-replicas {settings.max_replicas}")
    if settings.min_replicas and not settings.max_replicas:
        raise SystemExit("--min-replicas needs --max-replicas (autoscaling between the two)")
