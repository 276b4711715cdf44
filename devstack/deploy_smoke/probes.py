"""The probes a container declares, run as the kubelet runs them: HTTP GET with the pod
IP as Host, exec in the container, TCP connect."""

from __future__ import annotations

import http.client
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from devstack.deploy_smoke.pod import Container
from devstack.deploy_smoke.processes import chart_command, exec_in
from devstack.deploy_smoke.steps import SmokeFailed, note
from devstack.procs import LOOPBACK

# kubelet sends the pod's IP as Host; any address outside ALLOWED_HOSTS tests the same
# thing. A documentation address (RFC 5737): it only goes into the header.
PROBE_HOST_IP = "192.0.2.10"
# Every probe of a container must have passed once within this many seconds of its start.
PROBE_DEADLINE = 90.0


def http_request(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """One request without redirects followed (a redirect is an answer to look at, not to follow)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def probe_once(container: Container, repo: Path, kind: str, probe: dict[str, Any]) -> str | None:
    """Run a probe as kubelet would; None when it passes, else why it failed."""
    timeout = float(probe.get("timeoutSeconds", 1))
    if "httpGet" in probe:
        get = probe["httpGet"]
        port = get["port"]
        if isinstance(port, str):  # a named port
            named = [p for p in container.spec.get("ports", []) if p.get("name") == port]
            if not named:
                return f"httpGet port {port!r} is not a port of the container"
            port = named[0]["containerPort"]
        if int(port) not in container.port_map:
            return f"httpGet port {port} is not a container port"
        headers = {"Host": f"{PROBE_HOST_IP}:{port}", "User-Agent": "kube-probe/deploy-smoke", "Accept": "*/*"}
        headers.update({h["name"]: h["value"] for h in get.get("httpHeaders", []) or []})
        try:
            status, body = http_request(container.port_map[int(port)], "GET", get.get("path", "/"), headers, None, 5)
        except OSError as exc:
            return f"GET {get.get('path')}: {exc}"
        # kubelet counts 200-399 as success; a 3xx here would be the HTTPS redirect,
        # meaning the endpoint itself never answered, so only 2xx passes.
        if 200 <= status < 300:
            return None
        return f"GET {get.get('path')} answered {status}: {body[:300]!r}"
    if "exec" in probe:
        argv = chart_command(container, probe["exec"]["command"])
        try:
            result = exec_in(container, repo, argv, max(timeout, 1.0))
        except subprocess.TimeoutExpired:
            return f"exec {shlex.join(argv)} took longer than timeoutSeconds={timeout:g}"
        if result.returncode == 0:
            return None
        return f"exec {shlex.join(argv)} exited {result.returncode}: {(result.stdout + result.stderr).strip()[:300]}"
    if "tcpSocket" in probe:
        port = int(probe["tcpSocket"]["port"])
        try:
            http.client.HTTPConnection(LOOPBACK, container.port_map.get(port, port), timeout=timeout).connect()
            return None
        except OSError as exc:
            return f"tcpSocket {port}: {exc}"
    return f"{kind}: unsupported probe type {sorted(probe)}"


def wait_for_probes(container: Container, repo: Path) -> None:
    """Every probe the container declares must pass once before the deadline."""
    kinds = [k for k in ("startupProbe", "readinessProbe", "livenessProbe") if container.spec.get(k)]
    if not kinds:
        raise SmokeFailed(f"{container.label}: the chart declares no probe for it", [container.log])
    deadline = time.monotonic() + PROBE_DEADLINE
    for kind in kinds:
        began = time.monotonic()
        last = ""
        while True:
            assert container.popen is not None
            if container.popen.poll() is not None:
                raise SmokeFailed(
                    f"{container.label} exited {container.popen.returncode} before its {kind} passed", [container.log]
                )
            failure = probe_once(container, repo, kind, container.spec[kind])
            if failure is None:
                note(f"{container.label}: {kind} passed after {time.monotonic() - began:.1f}s")
                break
            last = failure
            if time.monotonic() > deadline:
                raise SmokeFailed(
                    f"{container.label}: {kind} did not pass within {PROBE_DEADLINE:.0f}s; last: {last}",
                    [container.log],
                )
            time.sleep(0.5)
