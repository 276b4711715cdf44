"""`make restore-drill --quick` end to end: its own servers, service processes and restore."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.processes
def test_the_quick_restore_drill_passes_every_check() -> None:
    # when the quick drill runs (fresh servers of its own; about a minute here)
    done = subprocess.run(
        [sys.executable, "-m", "devstack.restore_drill", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )

    # then every check passed, and the summary names what the restore meant for Kafka
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "7 checks: all checks passed" in done.stdout
    assert "ok   re-sent with original ids: 4 events sent again, 0 new event ids" in done.stdout
    assert "ok   orphans are the orders created after T: 4 orders" in done.stdout
    assert "4 orphans (4 already voided, 0 voided now)" in done.stdout
