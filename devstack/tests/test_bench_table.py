"""The bench table's delivery rows: a delay measured while the API fell short of the asked rate
is marked as no reading against its target."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.bench.run import delivery_rows


def _figures(rate: float) -> dict[str, Any]:
    return {
        "steady": {"rate": rate, "p50_ms": 30.0, "p95_ms": 90.0, "p99_ms": 140.0},
        "burst": {"orders": 2000, "write_seconds": 1.2, "last_ack_after_last_commit_ms": 40.0},
    }


def test_a_delay_at_the_asked_rate_reads_against_its_target(capsys: pytest.CaptureFixture[str]) -> None:
    steady, burst = delivery_rows(_figures(196.0), 200.0)

    assert steady[0].endswith("API creates at 196/s (asked 200)")
    assert steady[1] == "p50 30 ms, p95 90 ms, p99 140 ms"
    assert steady[2] == "target p50 < 50 ms, p99 < 250 ms"
    assert burst[2] == "target < 1000 ms"
    assert "warning" not in capsys.readouterr().out


def test_a_delay_short_of_the_asked_rate_is_marked_and_warned(capsys: pytest.CaptureFixture[str]) -> None:
    steady, _ = delivery_rows(_figures(69.0), 200.0)

    assert steady[2] == "NOT COMPARABLE: 34% of the asked rate (target p50 < 50 ms, p99 < 250 ms)"
    assert "warning: delivery reached 69 creates/s of the 200 asked" in capsys.readouterr().out
