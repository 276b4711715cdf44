"""The heartbeat probe that the chart runs for worker, beat and consumer (by path, as the chart does),
and the touch the processes make."""

import os
import subprocess
import sys
import time
from pathlib import Path

from orders_project.heartbeat import heartbeat_touch

PROBE = Path(__file__).resolve().parents[1] / "heartbeat_probe.py"


def _probe(path, max_age="60") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-I", "-S", str(PROBE), str(path), "--max-age", max_age]
    return subprocess.run(command, capture_output=True, text=True)


def test_probe_passes_on_a_fresh_heartbeat(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTBEAT_FILE", str(tmp_path / "heartbeat"))
    heartbeat_touch(force=True)

    assert _probe(tmp_path / "heartbeat").returncode == 0


def test_probe_fails_on_a_stale_heartbeat(tmp_path):
    path = tmp_path / "heartbeat"
    path.touch()
    old = time.time() - 120
    os.utime(path, (old, old))

    result = _probe(path)

    assert result.returncode == 1
    assert result.stderr.startswith("heartbeat 120s old (max 60s)")


def test_probe_fails_when_no_heartbeat_was_ever_written(tmp_path):
    result = _probe(tmp_path / "heartbeat")

    assert result.returncode == 1
    assert result.stderr == f"no heartbeat at {tmp_path / 'heartbeat'}\n"


def test_without_heartbeat_file_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("HEARTBEAT_FILE", raising=False)
    monkeypatch.chdir(tmp_path)

    heartbeat_touch(force=True)

    assert list(tmp_path.iterdir()) == []
