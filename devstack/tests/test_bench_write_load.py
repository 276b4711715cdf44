"""The write-load bench (python -m devstack.bench write-load) end to end at a tiny size, so it cannot rot.

It starts its own servers and asserts no speed: only that every figure was measured and that the
counts are the ones a created, confirmed and shipped order must write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Starts the bench's own servers and a Python child process.
pytestmark = pytest.mark.processes

REPO = Path(__file__).resolve().parents[2]
ORDERS = 20


def test_the_write_load_bench_measures_every_figure_of_a_created_confirmed_shipped_and_relayed_order(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devstack.bench", "write-load", "--orders", str(ORDERS), "--results", str(tmp_path)],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    [written] = [path for path in tmp_path.glob("*-write-load.json") if not path.name.startswith("latest")]
    figures = json.loads(written.read_text())["results"]["write_load"]
    assert figures["create"]["done"] == ORDERS
    assert figures["lifecycle"]["done"] == 2 * ORDERS  # confirmed, then shipped
    assert figures["relay"]["done"] == 3 * ORDERS  # created, confirmed, shipped
    for phase in ("create", "lifecycle", "relay"):
        assert figures[phase]["wal_bytes"] > 0, phase
        assert figures[phase]["xact_commit"] > 0, phase
        assert figures[phase]["rows_written"] > 0, phase
    # An order, its item, its first history row and its event: four rows in one transaction each.
    assert figures["create"]["tup_inserted"] == 4 * ORDERS
    assert figures["create"]["xact_commit"] >= ORDERS
    # The relay only updates outbox rows (the lease, then published): it inserts nothing.
    assert figures["relay"]["tup_inserted"] == 0 and figures["relay"]["tup_updated"] >= 3 * ORDERS
    kafka = figures["kafka"]
    assert kafka["messages"] == 3 * ORDERS
    assert set(kafka["topics"]) == {"order.created", "order.confirmed", "order.shipped"}
    assert kafka["bytes"] > kafka["messages"] * 100  # a key, a JSON payload and the headers each
    assert figures["total_per_order"]["wal_bytes"] > 0
