"""The short CI variant of bench/soak.py: several sessions at once, nothing fails but "queue full"."""

import pytest

from bench.soak import soak

pytestmark = pytest.mark.slow


def test_concurrent_sessions_on_mixed_endpoints():
    result = soak(sessions=4, seconds=12, queue_size=2, warm_rounds=1)  # memory is the benchmark's, not asserted
    assert result["failed"] == 0, result["errors"]
    assert result["ok"] >= 4
    assert result["requests"] == result["ok"] + result["queue_full"]
