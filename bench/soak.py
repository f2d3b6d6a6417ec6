"""Many users at once: concurrent gradio_client sessions on mixed endpoints against one app.

    python bench/soak.py --sessions 16 --seconds 180     # the long run
    python bench/soak.py --sessions 4 --seconds 20       # the CI variant (tests/test_soak.py)

Counts requests, failures other than an explicit "queue full", memory growth after warm-up, and the
files left in Gradio's cache. Traffic goes to 127.0.0.1 only; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from PIL import Image  # noqa: E402

T2I = dict(prompt="a small red circle on a white background", negative_prompt="", seed=-1, steps=8,
           guidance_scale=5, width=64, height=64, num_images=1, scheduler="Euler a", model="shapes")


def start_app(queue_size: int) -> tuple[subprocess.Popen, str]:
    """The app in its own process (so its memory is measured alone), on a free loopback port."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "app.py", "--no-open-browser", "--outputs", "", "--port", str(port),
               "--queue-size", str(queue_size)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(120):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("the app did not start")


def session(url: str, deadline: float, index: int, image: str, mask: str, stats: dict, lock: threading.Lock) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    calls = [
        lambda: client.predict(**T2I, api_name="/txt2img"),
        lambda: client.predict(image=handle_file(image), prompt="", seed=-1, num_images=1, similarity=0.7, steps=8,
                               api_name="/variations"),
        lambda: client.predict(image=handle_file(image), mask=handle_file(mask), prompt="a blue square", steps=8,
                               api_name="/inpaint"),
        lambda: client.predict(prompt="a red circle", prompt_b="a blue circle", num_frames=2, steps=6,
                               even_pacing=False, api_name="/morph"),
    ]
    n = index
    while time.monotonic() < deadline or (index < 0 and n < len(calls)):
        try:
            calls[n % len(calls)]()
            key = "ok"
        except Exception as e:  # counted, never raised: the soak reports, the caller judges
            key = "queue_full" if "queue" in str(e).lower() and "full" in str(e).lower() else "failed"
            if key == "failed":
                with lock:
                    stats.setdefault("errors", []).append(str(e)[:200])
        with lock:
            stats[key] = stats.get(key, 0) + 1
        n += 1


def soak(sessions: int, seconds: float, queue_size: int, warm_rounds: int = 2) -> dict:
    from gradio.utils import get_upload_folder

    cache = Path(get_upload_folder())
    files_before = sum(1 for f in cache.rglob("*") if f.is_file())
    server, url = start_app(queue_size)
    process = psutil.Process(server.pid)
    work = Path(tempfile.mkdtemp(prefix="atelier-soak-inputs-"))
    Image.new("RGB", (64, 64), (255, 255, 255)).save(work / "in.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask.save(work / "mask.png")
    warm: dict = {}
    # Warm-up: every endpoint once (index -1 runs each call regardless of the deadline), twice over for the
    # memory figure (the second round's growth is the allocator settling, not a leak).
    for _ in range(warm_rounds):
        session(url, 0.0, -1, str(work / "in.png"), str(work / "mask.png"), warm, threading.Lock())
    rss_warm = process.memory_info().rss
    stats: dict = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=session, args=(url, deadline, i, str(work / "in.png"), str(work / "mask.png"), stats, lock))
        for i in range(sessions)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 300)
    rss_end = process.memory_info().rss
    files = sum(1 for f in cache.rglob("*") if f.is_file()) - files_before
    server.terminate()
    server.wait(30)
    return {
        "sessions": sessions,
        "seconds": seconds,
        "requests": stats.get("ok", 0) + stats.get("failed", 0) + stats.get("queue_full", 0),
        "ok": stats.get("ok", 0),
        "queue_full": stats.get("queue_full", 0),
        "failed": stats.get("failed", 0),
        "errors": stats.get("errors", [])[:5],
        "memory_growth_after_warmup": round(rss_end / rss_warm - 1, 3),
        "new_cache_files": files,  # bounded by the app's delete_cache=(900 s, 3600 s)
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=16)
    p.add_argument("--seconds", type=float, default=180)
    p.add_argument("--queue-size", type=int, default=16)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    result = soak(args.sessions, args.seconds, args.queue_size)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
