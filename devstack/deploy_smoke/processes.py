"""A container as a local process: started in its own process group (in its sandbox when
it has one), run to the end, exec'd into, stopped as the kubelet stops it."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from devstack.deploy_smoke.kube_env import expand
from devstack.deploy_smoke.pod import Container, retmp
from devstack.deploy_smoke.steps import SmokeFailed, note


def start(container: Container, repo: Path, logs: Path) -> None:
    container.log = logs / f"{container.label.replace('/', '-')}.log"
    argv = container.sandbox.wrap(container.argv) if container.sandbox else container.argv
    with open(container.log, "wb") as out:
        container.popen = subprocess.Popen(
            argv,
            cwd=repo,
            env=container.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a container; signals reach only it
        )
    note(f"{container.label}: started {shlex.join(container.argv)} (pid {container.popen.pid})")


def run_to_end(container: Container, repo: Path, logs: Path, timeout: float) -> None:
    """Run a container that must finish (migrate Job, init container) and exit 0."""
    start(container, repo, logs)
    assert container.popen is not None
    try:
        code = container.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_group(container)
        raise SmokeFailed(f"{container.label} did not finish within {timeout:.0f}s", [container.log]) from None
    if code != 0:
        raise SmokeFailed(f"{container.label} exited {code}", [container.log])


def kill_group(container: Container) -> None:
    if container.popen is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(container.popen.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        container.popen.wait(5)


def chart_command(container: Container, parts: list[Any]) -> list[str]:
    """A command from the chart (probe, hook) as it runs here: /tmp rewritten, then $(VAR) expanded."""
    return [expand(retmp(str(part), container.tmp), container.env) for part in parts]


def exec_in(
    container: Container, repo: Path, argv: list[str], timeout: float, *, as_pod: bool = True
) -> subprocess.CompletedProcess[str]:
    """Like `kubectl exec`: a command with the container's environment, and its sandbox
    unless as_pod is False: what the image build or the cluster's operators do, as the
    current user and without the pod's /tmp (whose files it would leave to the pod's user)."""
    env = container.env
    if as_pod and container.sandbox is not None:
        argv = container.sandbox.wrap(argv)
    elif not as_pod:
        env = {name: value for name, value in env.items() if not value.startswith(str(container.tmp))}
    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def stop_gracefully(container: Container, repo: Path, results: dict[str, str]) -> None:
    """preStop hook, then SIGTERM to the main process; it must exit within the grace period."""
    assert container.popen is not None
    began = time.monotonic()
    pre_stop = (container.spec.get("lifecycle") or {}).get("preStop") or {}
    if "exec" in pre_stop:
        with contextlib.suppress(subprocess.TimeoutExpired):
            exec_in(container, repo, chart_command(container, pre_stop["exec"]["command"]), container.grace_seconds)
    elif "sleep" in pre_stop:
        time.sleep(float(pre_stop["sleep"]["seconds"]))
    if container.popen.poll() is None:
        container.popen.send_signal(signal.SIGTERM)  # to the main process only, as the runtime does to PID 1
    left = container.grace_seconds - (time.monotonic() - began)
    try:
        code = container.popen.wait(max(left, 0.1))
    except subprocess.TimeoutExpired:
        results[container.label] = f"still running after terminationGracePeriodSeconds={container.grace_seconds:g}"
        kill_group(container)
        return
    kill_group(container)  # what the container runtime does to anything left in the container
    took = time.monotonic() - began
    if code not in (0, -signal.SIGTERM):
        results[container.label] = f"exited {code} after SIGTERM"
        return
    note(f"{container.label}: exited {code} {took:.1f}s after stop began (grace {container.grace_seconds:g}s)")
