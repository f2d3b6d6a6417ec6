"""bench/gpu.py cannot rot: its CPU smoke path runs here as it will run on a lent GPU machine (no Gradio)."""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The GPU machine has neither Gradio nor spaces: the benchmark must not need them.
WITHOUT_GRADIO = """
import runpy, sys
sys.modules["gradio"] = sys.modules["spaces"] = None  # importing either now fails
sys.argv = ["bench/gpu.py", *sys.argv[1:]]
runpy.run_path("bench/gpu.py", run_name="__main__")
"""


def test_the_gpu_benchmark_smoke_run_measures_every_planned_speed_and_writes_its_json(tmp_path):
    args = [
        "--smoke",
        "--emulate",
        "--out",
        str(tmp_path),
        "--cases",
        "sd15-512-b1",
        "sdxl-1024-b1",
        "--speeds",
        "off",
        "graphs",
        "compile-graphs",
        "compiled",
        "auto",
    ]
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_GRADIO, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = tmp_path.glob("gpu-*.json")
    run = json.loads(path.read_text())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", run["date"]) and run["device"] and run["complete"]
    rows = {(r["case"], r["speed"]): r for r in run["results"]}
    assert set(rows) == {
        ("sd15-512-b1", "plain"),
        ("sd15-512-b1", "off"),
        ("sd15-512-b1", "graphs"),
        ("sd15-512-b1", "compile-graphs"),
        ("sd15-512-b1", "compiled"),
        ("sd15-512-b1", "auto"),
        ("sdxl-1024-b1", "plain"),
        ("sdxl-1024-b1", "graphs"),
        ("sdxl-1024-b1", "compile-graphs"),
        ("sdxl-1024-b1", "compiled"),
        ("sdxl-1024-b1", "auto"),
    }
    for (case, speed), row in rows.items():
        assert "error" not in row and "skipped" not in row, row
        assert row["date"] == run["date"] and row["device"] == run["device"] and row["plain_s"] > 0
        if speed == "compiled":  # the docs' recipe (without torch.compile on a CPU), measured on a fresh build
            assert "fuse_qkv_projections" in row["recipe"] and row["compiled_s"] > 0
            assert row["pixels_vs_plain"]["max_abs"] <= 8  # fused projections: float noise, not another picture
        elif speed != "plain":
            assert row["speedup"] == round(row["plain_s"] / row["atelier_s"], 3)
            # Every Atelier row is compared with the recipe too, whichever was measured first.
            assert row["vs_compiled"] == round(rows[(case, "compiled")]["compiled_s"] / row["atelier_s"], 3)
            assert row["effective"]["manager_gpu_speed"] == "off"  # on a CPU the manager applies nothing itself
        if speed == "auto":  # images made while it compiled, then the compiled forward adopted
            assert row["background"] == "compiled" and row["adoptions"] == 1 and row["full_speed_after_s"] > 0
        if "graphs" in speed or speed == "auto":
            assert row["effective"]["graphs"]["replays"] > 0 and row["graph_vs_eager_max_rel"] == 0.0
    assert (
        rows[("sd15-512-b1", "off")]["pixels_vs_plain"]["max_abs"] == 0
    )  # Atelier's path, nothing applied: same pixels
    assert "speedup" in done.stdout  # the summary table
