"""The scale bench (python -m devstack.bench scale) end to end at a tiny size, so it cannot rot.

It starts its own servers (as `make bench-scale` does) and asserts no speed: only that every
figure was measured and that each retention removed exactly its day's rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Starts the bench's own servers and Python child processes.
pytestmark = pytest.mark.processes

REPO = Path(__file__).resolve().parents[2]
# Seconds of API creates per size: long enough for some to be answered on a machine loaded
# past its cores (one second, beside CI's lane and two CPU-bound processes, answered none:
# the first creates of a fresh gunicorn took longer than the window).
API_SECONDS = 3


def test_the_scale_bench_measures_every_figure_and_each_retention_removes_exactly_its_day(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devstack.bench", "scale", "--quick", "--rows", "2000", "--small-rows", "400",
         "--days", "4", "--pending", "100", "--api-seconds", str(API_SECONDS), "--results", str(tmp_path)],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    [written] = [path for path in tmp_path.glob("*-scale.json") if not path.name.startswith("latest")]
    results = json.loads(written.read_text())["results"]
    assert "missing" not in json.loads(written.read_text())["table"]
    for label, rows in (("small", 400), ("large", 2000)):
        size = results[label]
        assert size["fill"]["rows"] == rows
        assert size["fill"]["after_fill"]["rows"] == {"published": rows}
        assert size["relay_burst"]["order_kept"] and size["relay_vacuumed"]["order_kept"]
        assert size["relay_burst"]["claims"] > 0 and size["relay_vacuumed"]["claims"] > 0
        assert size["api_create"]["c16"]["requests"] > 0
        per_day = rows // 4
        for key in ("retention", "baseline"):
            assert size[key]["day_rows"] == per_day, (label, key)
            assert size[key]["day_rows_left"] == 0, (label, key)
            published = size[key]["before"]["rows"]["published"] - size[key]["after"]["rows"]["published"]
            assert published == per_day, (label, key)
        # Today's table: the batched DELETE is the retention; partitions dropped whole DELETE nothing.
        dropped = size["retention"]["kind"] == "outbox_retention_run"
        assert size["retention"]["rows_deleted"] == (0 if dropped else per_day)
        assert size["baseline"]["rows_deleted"] == per_day
        assert size["baseline"]["wal_bytes"] > 0
