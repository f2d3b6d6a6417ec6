"""What the Models panel's timer costs the server: one tick's work, with nothing changed and with a change.

    python bench/follow.py

Every open page asks every `ui.models.FOLLOW_SECONDS` whether a model was loaded or unloaded; a tick
that finds nothing changed reads the residency and sends nothing, one that finds a change also builds
the table and the picker's words. Prints both in milliseconds and the share of one core an open page
costs (the embedded model's registry, models in a process of their own as the app runs them).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(ticks: int = 200) -> None:
    from pipelines import Registry, Studio
    from pipelines.device.process import DeviceConfig, ProcessRunner
    from ui import models

    registry = Registry()
    runner = ProcessRunner(DeviceConfig(registry, device="cpu", dtype="float32"))
    studio = Studio(runner, registry)
    try:
        studio.residency()  # the model process is up
        start = time.perf_counter()
        for _ in range(ticks):
            [[m.model, m.state, m.pinned] for m in studio.residency()]
        unchanged = (time.perf_counter() - start) / ticks
        start = time.perf_counter()
        for _ in range(ticks):
            models.table(studio), models.picker_choices(studio)
        changed = (time.perf_counter() - start) / ticks
    finally:
        runner.close()
    print(json.dumps({
        "unchanged_tick_ms": round(unchanged * 1000, 2),
        "changed_tick_ms": round((unchanged + changed) * 1000, 2),
        "share_of_a_core_per_open_page": round(unchanged / models.FOLLOW_SECONDS, 5),
    }, indent=2))


if __name__ == "__main__":
    main()
