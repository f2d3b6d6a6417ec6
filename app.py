"""Atelier: the composition root. Read settings, build the manager, the runner and the studio, build the
UI, launch.

    python app.py                 # the embedded model, on this machine, offline
    python app.py --help          # every setting and its ATELIER_* variable

Importing this module does nothing but define functions: no model loads, no arguments parsed.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
import webbrowser

from pipelines import AtelierError, Registry, Studio
from settings import Settings, load_settings


def build_studio(settings: Settings) -> Studio:
    """The studio front over a runner that does the device work in this process, or on the cluster's
    model workers when --cluster is set."""
    from pipelines.front.loras import check_folders
    from pipelines.front.styles import StyleBook

    try:
        loras = check_folders(settings.lora_folders)
    except ValueError as e:
        raise SystemExit(f"--lora-dirs: {e}") from None
    registry = Registry.with_folders(settings.model_folders, loras)
    if settings.model not in registry.names:
        raise SystemExit(f"--model {settings.model!r} is not a preset: {', '.join(registry.names)}")
    runner = cluster_runner(settings) if settings.cluster else device_runner(settings, registry)
    return Studio(
        runner,
        registry,
        outputs=settings.outputs,
        max_pixels=settings.max_pixels,
        max_images=settings.max_images,
        # A public demo serves many people from one server: nobody's styles are kept for the others to see.
        styles=StyleBook(settings.styles_path, writable=not settings.public_demo),
        credentials=signing_credentials(settings),
    )


def device_runner(settings: Settings, registry: Registry):
    """The device work on this machine's accelerator (or CPU): in a process of its own beside the server's,
    out of reach of its threads (the default), or in this one (--no-model-process, and always on ZeroGPU,
    which lends the GPU to this process's forks)."""
    from pipelines.device.zerogpu import on_zerogpu

    if settings.model_process and not on_zerogpu():
        from pipelines.device.process import DeviceConfig, ProcessRunner  # torch stays out of this process

        device = DeviceConfig(registry, settings.device, settings.dtype, int(settings.memory_budget_gb * 2**30),
                              settings.gpu_speed, settings.offline, settings.vae_tiling_pixels)
        return ProcessRunner(device)
    from pipelines.device.local import LocalRunner
    from pipelines.device.manager import PipelineManager

    manager = PipelineManager(
        registry,
        device=settings.device,
        dtype=settings.dtype,
        memory_budget_bytes=int(settings.memory_budget_gb * 2**30),
        gpu_speed=settings.gpu_speed,
        offline=settings.offline,
    )
    if on_zerogpu():
        # ZeroGPU lends the GPU to each job in a process forked from this one: a model loaded here, at
        # start-up and outside the `spaces.GPU` function as its docs ask, is what every job starts from.
        manager.resident_model(settings.model)
    return LocalRunner(manager, vae_tiling_pixels=settings.vae_tiling_pixels)


def signing_credentials(settings: Settings):
    """What signs the results: the studio's own certificate, else (a public demo) a key of this process,
    else the key made on first start in the user's data folder; None with --no-credentials."""
    from pipelines.front.credentials import Credentials, Identity, trust_anchors

    if not settings.credentials:
        return None
    if bool(settings.c2pa_cert) != bool(settings.c2pa_key):
        raise SystemExit("--c2pa-cert and --c2pa-key go together: give both, or neither for the local key")
    try:
        if settings.c2pa_cert:
            identity = Identity.from_files(settings.c2pa_cert, settings.c2pa_key)
        elif settings.public_demo:
            identity = Identity.per_process()
        else:
            identity = Identity.local(settings.signing_folder)
        trust = trust_anchors(settings.c2pa_trust) if settings.c2pa_trust else b""
    except ValueError as e:
        raise SystemExit(str(e)) from None
    return Credentials(identity, trust)


def cluster_runner(settings: Settings):
    """The model workers of a Ray cluster (started here for --cluster local), saying what it waits for.
    Raises an AtelierError that says what to do when Ray or the workers cannot be had."""
    from pipelines.device.cluster import ClusterSpec, start_cluster
    from pipelines.device.worker import WorkerConfig

    spec = ClusterSpec(
        address=settings.cluster,
        replicas=settings.replicas,
        min_replicas=settings.min_replicas,
        max_replicas=settings.max_replicas,
    )
    config = WorkerConfig(
        model_folders=settings.model_folders,
        device=settings.device,
        dtype=settings.dtype,
        memory_budget_gb=settings.memory_budget_gb,
        models_per_replica=settings.models_per_replica,
        vae_tiling_pixels=settings.vae_tiling_pixels,
        gpu_speed=settings.gpu_speed,
        offline=settings.offline,
        preload=settings.model,
    )
    return start_cluster(spec, config, say=lambda line: print(f"Cluster: {line}", flush=True))


def build_app(settings: Settings, studio: Studio | None = None):
    """The Gradio Blocks for these settings (over `studio`, or one built for them), with its queue
    configured (not launched)."""
    from ui import build_ui

    studio = studio or build_studio(settings)
    demo = build_ui(studio, model=settings.model)
    if settings.mcp:
        from ui import mcp

        with demo:
            mcp.render(studio, settings.model)
    # The events that run a model share one concurrency group: one job at a time per model worker.
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=studio.runner.capacity)
    poll_gently(demo._queue, settings.queue_poll_ms / 1000)
    return demo


def poll_gently(queue, seconds: float) -> None:
    """Gradio's queue looks for new work every `seconds` while it has none, and for progress to send ten
    times less often, never more often than its own (1 and 10 ms, 50 and 100 ms on Windows): on a small
    machine those wake-ups take the model's cores (bench/speed.py). No setting of Gradio's sets them (its
    Queue keeps them as attributes), so a Gradio without them is left as it is, and said so."""
    for name, value in (("sleep_when_free", seconds), ("progress_update_sleep_when_free", 10 * seconds)):
        if not hasattr(queue, name):
            logging.getLogger(__name__).warning("Gradio's queue has no %s: it polls at its own pace", name)
            continue
        setattr(queue, name, max(value, getattr(queue, name)))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def launch_options(settings: Settings, studio: Studio) -> dict:
    """How the page is served: address, accounts, limits, look, and AUTOMATIC1111's `/sdapi/v1` (and
    with --mcp the MCP server) on the same port."""
    from api.sdapi import SdApi
    from ui import CSS, JS, THEME

    sdapi = SdApi(studio, model=settings.model, accounts=settings.accounts, queue_size=settings.queue_size)
    return dict(
        server_name=settings.host,
        server_port=settings.port,
        auth=settings.accounts or None,
        max_file_size="25mb",  # uploads are refused past this before they reach any handler
        footer_links=["api"],
        theme=THEME,
        css=CSS,
        js=JS,
        app_kwargs={"routes": sdapi.router().routes},  # Gradio builds its FastAPI app at launch, with these first
        mcp_server=settings.mcp,
    )


def serve_in_background(argv: list[str]):
    """Launch the app for these flags on a free loopback port without blocking: (demo, studio, url); the
    caller closes both (the studio's model process too). For tests, benchmarks and screenshots."""
    import socket

    settings, _ = load_settings(["--no-open-browser", *argv], environ={})
    studio = build_studio(settings)
    demo = build_app(settings, studio)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = launch_options(settings, studio)
    options.update(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    demo.launch(**options)
    return demo, studio, f"http://127.0.0.1:{port}/"


def quiet_start_up() -> None:
    """transformers warns on every start that its image processors fall back to PIL without
    torchvision. That fallback is what Atelier wants (torchvision would pull in a second torch build),
    so those warnings say nothing a person can act on."""
    logging.getLogger("transformers.utils.import_utils").setLevel(logging.ERROR)


def open_in_browser(url: str) -> bool:
    """Open `url` in a browser tab where there is a screen to show one; False where there is none."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False  # a server or a container: webbrowser would fail without a word
    return webbrowser.open(url)


def main(argv: list[str] | None = None) -> None:
    settings, args = load_settings(argv)
    if args.list_models:
        for preset in Registry.with_folders(settings.model_folders).presets:
            print(f"{preset.name:12} {preset.label:34} {preset.source}")
        return
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    quiet_start_up()
    if not is_loopback(settings.host) and not settings.auth and not settings.public_demo:
        print(
            f"WARNING: serving on {settings.host} without a password: anyone on the network can use this "
            "machine's GPU and see what is generated. Set --auth user:password.",
            file=sys.stderr,
        )
    try:
        studio = build_studio(settings)
        demo = build_app(settings, studio)
    except AtelierError as e:  # Ray or the model workers could not be had: say what to do, exit non-zero
        raise SystemExit(f"Atelier could not start: {e}") from None
    where = os.path.abspath(settings.outputs) if settings.outputs else "not saved (public demo)"
    print(f"Outputs: {where}. {studio.signer}")
    # A service manager stops the app with SIGTERM: close it as Ctrl+C does. Set after the studio is built,
    # as Ray (--cluster) installs a handler of its own that aborts the process with a stack dump.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        demo.launch(**launch_options(settings, studio), prevent_thread_lock=True, quiet=True)
        opened = settings.open_browser and open_in_browser(demo.local_url)
        where = "opened in your browser" if opened else "open this address in a browser"
        print(f"Atelier is running at {demo.local_url} ({where}; Ctrl+C stops it)", flush=True)
        print(f"AUTOMATIC1111's API: {demo.local_url}sdapi/v1/", flush=True)
        demo.block_thread()
    except KeyboardInterrupt:  # Ctrl+C or SIGTERM before block_thread, which catches its own
        pass
    finally:
        studio.runner.close()  # a running job stops at its next step: the server then closes without waiting on it
        demo.close()
        studio.close()


if __name__ == "__main__":
    main()
    # Everything is closed and written. The interpreter's own teardown of torch and gradio took seconds more
    # (11 s measured on a busy machine) before the process was gone: skip it.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
