"""deploy-smoke's sandbox: a command runs as the pod's user, and a write anywhere but its
/tmp fails, as it would in the pod (readOnlyRootFilesystem, runAsUser 10001)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import sandbox
from devstack.deploy.chart import REPO
from devstack.deploy_smoke import pod, processes, steps

pytestmark = pytest.mark.skipif(sandbox.available() is not None, reason=f"no sandbox here: {sandbox.available()}")

PROBE_WRITES = """
import json, os, sys
found = {"ids": [os.getuid(), os.getgid(), os.getgroups()]}
for path in sys.argv[1:]:
    try:
        with open(path, "w") as out:
            out.write("x")
        found[path] = "written"
    except OSError as exc:
        found[path] = exc.strerror
print(json.dumps(found))
"""


@pytest.fixture
def scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="sandbox-test-", dir=sandbox.SCRATCH_PARENT))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _sandbox(scratch: Path) -> sandbox.Sandbox:
    box = sandbox.Sandbox(uid=10001, gid=10001, writable=scratch / "pod-tmp", stage=scratch / "stage")
    box.prepare()
    return box


def test_only_the_process_tmp_is_writable_and_it_runs_as_the_pods_user(scratch: Path) -> None:
    box = _sandbox(scratch)
    targets = [
        str(box.writable / "heartbeat"),  # the rewritten /tmp path
        "/tmp/from-tempfile",  # /tmp itself: the same folder
        str(REPO / "sandbox-test-write"),  # the working directory (the image's /app)
        "/var/tmp/sandbox-test-write",  # world-writable on the host, read-only in the pod
        str(Path(sys.executable).parent / "sandbox-test-write"),  # the venv (the image's /opt/venv)
    ]
    try:
        result = subprocess.run(
            box.wrap([sys.executable, "-c", PROBE_WRITES, *targets]),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        for leftover in targets[2:]:
            Path(leftover).unlink(missing_ok=True)

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found.pop("ids") == [10001, 10001, []]
    assert found == {
        targets[0]: "written",
        targets[1]: "written",
        targets[2]: "Read-only file system",
        targets[3]: "Read-only file system",
        targets[4]: "Read-only file system",
    }
    # (A checkout below /tmp, as CI's, is bound back inside it: its mount point is there too.)
    checkout_top = REPO.relative_to("/tmp").parts[0] if REPO.is_relative_to("/tmp") else None
    written = sorted(path.name for path in box.writable.iterdir() if path.name != checkout_top)
    assert written == ["from-tempfile", "heartbeat"]


def test_a_container_that_writes_outside_tmp_fails_the_smoke_run(scratch: Path) -> None:
    box = _sandbox(scratch)
    target = REPO / "sandbox-test-container-write"
    container = pod.Container(
        pod="migrate",
        name="migrate",
        spec={},
        argv=[sys.executable, "-c", f"open({str(target)!r}, 'w').write('x')"],
        env={"PATH": "/usr/bin:/bin"},
        grace_seconds=5,
        tmp=box.writable,
        sandbox=box,
    )
    logs = scratch / "logs"
    logs.mkdir()
    try:
        with pytest.raises(steps.SmokeFailed, match="migrate exited 1"):
            processes.run_to_end(container, REPO, logs, timeout=60)
        assert not target.exists()
        assert "Read-only file system" in container.log.read_text()
    finally:
        target.unlink(missing_ok=True)
