"""Atelier: the composition root. Read settings, build the manager, the runner and the studio, build the
UI, launch.

    python app.py                 # the embedded model, on this machine, offline
    python app.py --help          # every setting and its ATELIER_* variable

Importing this module does nothing but define functions: no model loads, no arguments parsed.
"""

from __future__ import annotations

import ipaddress
import os
import sys

from pipelines import Registry, Studio
from settings import Settings, load_settings


def build_studio(settings: Settings) -> Studio:
    """The studio front over a runner that does the device work in this process."""
    from pipelines.local import local_studio
    from pipelines.loras import check_folders
    from pipelines.manager import PipelineManager
    from pipelines.styles import StyleBook

    try:
        loras = check_folders(settings.lora_folders)
    except ValueError as e:
        raise SystemExit(f"--lora-dirs: {e}") from None
    registry = Registry.with_folders(settings.model_folders, loras)
    if settings.model not in registry.names:
        raise SystemExit(f"--model {settings.model!r} is not a preset: {', '.join(registry.names)}")
    manager = PipelineManager(
        registry,
        device=settings.device,
        dtype=settings.dtype,
        memory_budget_bytes=int(settings.memory_budget_gb * 2**30),
        gpu_speed=settings.gpu_speed,
        offline=settings.offline,
    )
    return local_studio(
        manager,
        vae_tiling_pixels=settings.vae_tiling_pixels,
        outputs=settings.outputs,
        max_pixels=settings.max_pixels,
        max_images=settings.max_images,
        # A public demo serves many people from one server: nobody's styles are kept for the others to see.
        styles=StyleBook(settings.styles_path, writable=not settings.public_demo),
    )


def build_app(settings: Settings):
    """The Gradio Blocks for these settings, with its queue configured (not launched)."""
    from ui import build_ui

    demo = build_ui(build_studio(settings), model=settings.model)
    return demo.queue(max_size=settings.queue_size, default_concurrency_limit=1)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def launch_options(settings: Settings) -> dict:
    from ui import CSS, JS, THEME

    user, _, password = settings.auth.partition(":")
    return dict(
        server_name=settings.host,
        server_port=settings.port,
        auth=(user, password) if settings.auth else None,
        inbrowser=settings.open_browser,
        max_file_size="25mb",  # uploads are refused past this before they reach any handler
        footer_links=["api"],
        theme=THEME,
        css=CSS,
        js=JS,
    )


def serve_in_background(argv: list[str]):
    """Launch the app for these flags on a free loopback port without blocking: (demo, url).
    For tests, benchmarks and screenshots."""
    import socket

    settings, _ = load_settings(["--no-open-browser", *argv], environ={})
    demo = build_app(settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = launch_options(settings)
    options.update(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    demo.launch(**options)
    return demo, f"http://127.0.0.1:{port}/"


def main(argv: list[str] | None = None) -> None:
    settings, args = load_settings(argv)
    if args.list_models:
        for preset in Registry.with_folders(settings.model_folders).presets:
            print(f"{preset.name:12} {preset.label:34} {preset.source}")
        return
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if not is_loopback(settings.host) and not settings.auth and not settings.public_demo:
        print(
            f"WARNING: serving on {settings.host} without a password: anyone on the network can use this "
            "machine's GPU and see what is generated. Set --auth user:password.",
            file=sys.stderr,
        )
    demo = build_app(settings)
    print(f"Outputs: {os.path.abspath(settings.outputs)}" if settings.outputs else "Outputs: not saved (public demo)")
    try:
        demo.launch(**launch_options(settings))
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()


if __name__ == "__main__":
    main()
