"""The chart's heartbeat probe, run as the kubelet runs it: every 15 s in every worker,
beat and consumer pod, so it must load nothing but the standard library."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devstack.deploy.chart import REPO, Manifest, containers, find

IMAGE_WORKDIR = "/app"


def heartbeat_probes(manifests: list[Manifest]) -> list[list[str]]:
    return [
        container[kind]["exec"]["command"]
        for deployment in find(manifests, "Deployment")
        for container in containers(deployment)
        for kind in ("startupProbe", "livenessProbe")
        if "exec" in container.get(kind, {})
    ]


def test_the_heartbeat_probe_imports_only_the_standard_library(
    default_manifests: list[Manifest], tmp_path: Path
) -> None:
    probes = heartbeat_probes(default_manifests)
    assert len(probes) == 6  # startup and liveness of worker, beat, consumer
    (probe,) = {tuple(command) for command in probes}
    assert probe[0] == "python"
    heartbeat = tmp_path / "heartbeat"
    heartbeat.touch()
    # The image's `python` is this interpreter; its /app is the checkout; /tmp the pod's own.
    args = [part.replace(IMAGE_WORKDIR + "/", f"{REPO}/").replace("/tmp/heartbeat", str(heartbeat)) for part in probe]
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args[1:]],
        cwd=REPO,  # the image runs it in its WORKDIR
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "orders_project.settings"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and not line.endswith("imported package")
    }
    assert imported, "no -X importtime output"
    assert sorted(name for name in imported if name not in sys.stdlib_module_names) == []
