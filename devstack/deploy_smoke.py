"""`make deploy-smoke`: the chart's own containers run as local processes, end to end.

A schema check proves the manifests are well formed, not that the commands and
environment they give each container fit the code. This does: it renders the
chart, then for the migrate Job and the web, worker, beat and consumer
Deployments runs each container's `command` + `args`, with the environment the
chart gives it (ConfigMap and Secret `envFrom`, explicit `env`, `$(VAR)`
expansion, on top of the image's own ENV from the Dockerfile), as a process on
this machine, against embedded PostgreSQL, Valkey and Kafka started fresh for
the run. Then it runs the probes the chart declares, creates an order through
the web container's port, waits for its `order.created` event on Kafka (the
worker's relay put it there), and stops every process with SIGTERM (after its
preStop hook), checking it exits within the pod's terminationGracePeriodSeconds.

What differs from a pod, and only this (everything else is the chart's):
- Server addresses point at the embedded servers: POSTGRES_SERVER/PORT/USER/
  PASSWORD/DB, REDIS_HOST/PORT/PASSWORD, KAFKA_BOOTSTRAP_SERVERS and
  CELERY_BROKER_URL when the chart sets it.
- GUNICORN_BIND is a free loopback port (the chart's container port maps to it
  for the probes), and so is each process's METRICS_PORT (the chart's `metrics`
  port, 9100 in every pod, would collide on one host); each is scraped once the
  order went through.
- Every path under /tmp (HEARTBEAT_FILE=/tmp/heartbeat, ...) becomes a folder of
  its own per process: in the cluster /tmp is an emptyDir per pod, here every
  process shares one host, and two heartbeats in one file would hide a stuck
  process. Probe commands get the same rewrite.
- DJANGO_STATIC_ROOT points at a temporary folder that `collectstatic` fills
  first, as the Dockerfile does at build (the image has them in /app/staticfiles).
- PATH has .venv/bin first (the image's /opt/venv/bin), the working directory
  is the repository root (the image's /app; paths under /app in commands and
  probes point there).
- Sandboxed (the default when root, as in CI; devstack/sandbox.py), every
  container, probe and preStop hook runs as the chart's runAsUser/runAsGroup
  (10001) with the file system read-only but its own /tmp folder, which is
  also mounted over /tmp (so the folders live under /var/tmp); a process that
  writes anywhere else fails the run. collectstatic and create_kafka_topics
  (the image build's and Terraform's jobs) run as the current user. Without
  the sandbox (--no-sandbox, or not root), every process runs as the current
  user with a writable file system.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import kafka, postgres, valkey
from devstack.deploy import chart
from devstack.deploy_check import CheckFailed, render, resource_name
from devstack.procs import LOOPBACK, Server, free_port, log_tail
from devstack.sandbox import SCRATCH_PARENT, Sandbox
from devstack.sandbox import available as sandbox_unavailable

COMPONENTS = ("web", "worker", "beat", "consumer")
COMPONENT_LABEL = "app.kubernetes.io/component"
# Added to ci/default-values.yaml (the chart's defaults plus what a deployer must
# add): TLS ends at an ingress, which sends X-Forwarded-Proto, as this run's order
# request does. Without it the app redirects plain HTTP to HTTPS (its production
# default), and nothing could reach the API through the Service.
TLS_AT_INGRESS: dict[str, Any] = {"config": {"DJANGO_SECURE_PROXY_SSL_HEADER": "true"}}
# kubelet sends the pod's IP as Host; any address outside ALLOWED_HOSTS tests the same
# thing. A documentation address (RFC 5737): it only goes into the header.
PROBE_HOST_IP = "192.0.2.10"
POD_IP = LOOPBACK
UNWRITABLE_HOME = "/proc/deploy-smoke-nonexistent-home"
SMOKE_USER = "deploy-smoke-user"
# The Dockerfile's WORKDIR, where the image has manage.py and the packages: the checkout here.
IMAGE_WORKDIR = "/app"
ORDER_BODY = {
    "user_id": SMOKE_USER,
    "total_amount": "99.98",
    "currency": "USD",
    "items": [{"product_id": "prod1", "quantity": 2, "price": "49.99"}],
}
# Deadlines (seconds). The whole run takes ~40 s; CI wraps it in `timeout 300`.
MIGRATE_TIMEOUT = 180.0
PROBE_DEADLINE = 90.0
ORDER_DEADLINE = 60.0
EVENT_DEADLINE = 60.0
LOG_TAIL_LINES = 40


class SmokeFailed(Exception):
    """A step failed; the message says which and why, `logs` which process logs to show."""

    def __init__(self, message: str, logs: list[Path] | None = None) -> None:
        super().__init__(message)
        self.logs = logs or []


# --- timing ---

_START = time.monotonic()
_TIMINGS: list[tuple[str, float]] = []


@contextlib.contextmanager
def timed(name: str) -> Iterator[None]:
    began = time.monotonic()
    print(f"deploy-smoke {began - _START:5.1f}s | {name} ...", flush=True)
    try:
        yield
    except BaseException:
        _TIMINGS.append((f"{name}: FAILED", time.monotonic() - began))
        raise
    seconds = time.monotonic() - began
    _TIMINGS.append((name, seconds))
    print(f"deploy-smoke {time.monotonic() - _START:5.1f}s | {name}: done in {seconds:.1f}s", flush=True)


def note(message: str) -> None:
    print(f"deploy-smoke {time.monotonic() - _START:5.1f}s |   {message}", flush=True)


# --- the image: what the Dockerfile gives every container ---


def _dockerfile_final_stage(repo: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile's last stage, continuation lines joined."""
    lines: list[str] = []
    current = ""
    for raw in (repo / "Dockerfile").read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    instructions = []
    for line in lines:
        name, _, args = line.partition(" ")
        instructions.append((name.upper(), args.strip()))
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from + 1 :]


def image_env_and_cmd(repo: Path) -> tuple[dict[str, str], list[str]]:
    """The runtime stage's ENV (PATH left out: .venv/bin takes /opt/venv/bin's place) and CMD."""
    env: dict[str, str] = {}
    cmd: list[str] = []
    for name, args in _dockerfile_final_stage(repo):
        if name == "ENV":
            parts = shlex.split(args)
            if parts and "=" not in parts[0]:  # legacy form: ENV NAME value
                env[parts[0]] = " ".join(parts[1:])
            else:
                for part in parts:
                    key, _, value = part.partition("=")
                    env[key] = value
        elif name == "CMD":
            cmd = json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]
    env.pop("PATH", None)
    return env, cmd


# --- the chart: workloads and their environment ---


@dataclass
class Container:
    """One container of a rendered pod, resolved to a local command and environment."""

    pod: str  # the workload's component (web, worker, ...) or name
    name: str
    spec: dict[str, Any]
    argv: list[str]
    env: dict[str, str]
    grace_seconds: float
    tmp: Path
    port_map: dict[int, int] = field(default_factory=dict)
    log: Path = Path()
    popen: subprocess.Popen[bytes] | None = None
    # Run as the pod's user on a read-only file system (devstack/sandbox.py); None: as is.
    sandbox: Sandbox | None = None

    @property
    def label(self) -> str:
        return self.pod if self.name == self.pod else f"{self.pod}/{self.name}"


def component_of(doc: dict[str, Any]) -> str:
    labels = doc["spec"]["template"].get("metadata", {}).get("labels", {}) or {}
    component = labels.get(COMPONENT_LABEL) or doc["metadata"].get("labels", {}).get(COMPONENT_LABEL)
    return str(component or doc["metadata"]["name"].rsplit("-", 1)[-1])


def workloads(manifests: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The web/worker/beat/consumer Deployments by component, and the migrate Job."""
    deployments = {component_of(d): d for d in manifests if d.get("kind") == "Deployment"}
    missing = [c for c in COMPONENTS if c not in deployments]
    if missing:
        found = ", ".join(sorted(deployments)) or "none"
        raise SmokeFailed(f"the chart renders no Deployment for {', '.join(missing)} (found: {found})")
    jobs = [d for d in manifests if d.get("kind") == "Job" and component_of(d) in ("migrate", "migrations")]
    if len(jobs) != 1:
        raise SmokeFailed(f"expected one migrate Job in the default values, found {len(jobs)}")
    return {c: deployments[c] for c in COMPONENTS}, jobs[0]


def _find(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((d for d in manifests if d.get("kind") == kind and d["metadata"]["name"] == name), None)


def _config_map_data(manifests: list[dict[str, Any]], name: str) -> dict[str, str] | None:
    doc = _find(manifests, "ConfigMap", name)
    return None if doc is None else {k: str(v) for k, v in (doc.get("data") or {}).items()}


def _secret_data(manifests: list[dict[str, Any]], name: str) -> dict[str, str] | None:
    doc = _find(manifests, "Secret", name)
    if doc is None:
        return None
    data = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    data.update({k: str(v) for k, v in (doc.get("stringData") or {}).items()})
    return data


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, unknown ones kept, $$ is a $."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(replace, value)


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def quantity(value: Any) -> float:
    match = _QUANTITY.match(str(value))
    if match is None or match.group(2) not in _SUFFIX:
        raise SmokeFailed(f"cannot read the quantity {value!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def _env_from_source(
    item: dict[str, Any], container: dict[str, Any], manifests: list[dict[str, Any]], pod: dict[str, Any]
) -> str | None:
    source = item["valueFrom"]
    for kind, getter in (("configMapKeyRef", _config_map_data), ("secretKeyRef", _secret_data)):
        if kind in source:
            ref = source[kind]
            data = getter(manifests, ref["name"])
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    return None
                raise SmokeFailed(f"env {item['name']}: {kind} {ref['name']}/{ref['key']} is not rendered by the chart")
            return data[ref["key"]]
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        fields = {
            "metadata.name": pod["name"],
            "metadata.namespace": pod["namespace"],
            "status.podIP": POD_IP,
            "status.hostIP": LOOPBACK,
            "spec.nodeName": "deploy-smoke-node",
            "spec.serviceAccountName": pod.get("serviceAccountName", "default"),
        }
        label = re.fullmatch(r"metadata\.labels\['(.+)'\]", path)
        if label:
            return str(pod["labels"].get(label.group(1), ""))
        if path not in fields:
            raise SmokeFailed(f"env {item['name']}: fieldRef {path} is not supported by deploy-smoke")
        return str(fields[path])
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"]
        kind, resource = ref["resource"].split(".", 1)
        amount = container.get("resources", {}).get(kind, {}).get(resource)
        if amount is None:
            raise SmokeFailed(f"env {item['name']}: {ref['resource']} is not set on the container")
        return str(math.ceil(quantity(amount) / quantity(ref.get("divisor", "1"))))
    raise SmokeFailed(f"env {item['name']}: unsupported valueFrom {sorted(source)}")


def chart_env(container: dict[str, Any], manifests: list[dict[str, Any]], pod: dict[str, Any]) -> dict[str, str]:
    """The variables Kubernetes would set in this container from the rendered manifests."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []) or []:
        prefix = source.get("prefix", "")
        for kind, getter in (("configMapRef", _config_map_data), ("secretRef", _secret_data)):
            if kind not in source:
                continue
            ref = source[kind]
            data = getter(manifests, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise SmokeFailed(
                    f"container {container['name']}: {kind} {ref['name']!r} is not rendered by the chart "
                    "(an existingSecret? deploy-smoke renders the chart's own Secret)"
                )
            env.update({prefix + key: value for key, value in data.items()})
    for item in container.get("env", []) or []:
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
        elif "valueFrom" in item:
            value = _env_from_source(item, container, manifests, pod)
            if value is not None:
                env[item["name"]] = value
        else:
            env[item["name"]] = ""
    return env


def retmp(value: str, tmp: Path) -> str:
    """/tmp and paths below it moved into this process's own folder, the image's WORKDIR
    (/app) and paths below it to the checkout (see the module docstring)."""
    for root, local in (("/tmp", tmp), (IMAGE_WORKDIR, chart.REPO)):
        if value == root:
            return str(local)
        if value.startswith(root + "/"):
            return str(local / value[len(root) + 1 :])
    return value


@dataclass
class Servers:
    postgres: Server
    valkey: Server
    kafka: Server
    database: str


def local_env(
    chart: dict[str, str], image_env: dict[str, str], servers: Servers, tmp: Path, static_root: Path, venv_bin: Path
) -> dict[str, str]:
    """The process environment: image ENV, then the chart's, then the overrides the module docstring lists."""
    env = {
        # What the base image and the container runtime provide.
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "LANG": "C.UTF-8",  # python:*-slim sets it
        # The image's user has HOME=/nonexistent on a read-only root file system: nothing
        # can be written there. A folder under /proc cannot be made even by root, so
        # whatever tries to write to HOME fails here as it would in the pod.
        "HOME": UNWRITABLE_HOME,
    }
    # Only the image's and the chart's values: the local paths above may lie under /tmp too.
    env.update({name: retmp(value, tmp) for name, value in {**image_env, **chart}.items()})
    env.update(
        POSTGRES_SERVER=servers.postgres.host,
        POSTGRES_PORT=str(servers.postgres.port),
        POSTGRES_USER=postgres.SUPERUSER,
        POSTGRES_PASSWORD="",
        POSTGRES_DB=servers.database,
        REDIS_HOST=servers.valkey.host,
        REDIS_PORT=str(servers.valkey.port),
        REDIS_PASSWORD="",
        KAFKA_BOOTSTRAP_SERVERS=servers.kafka.address,
        DJANGO_STATIC_ROOT=str(static_root),
    )
    if "CELERY_BROKER_URL" in chart:
        # Same database number as the chart's URL (the settings' default is REDIS_DB + 1).
        db = re.search(r"/(\d+)$", chart["CELERY_BROKER_URL"])
        env["CELERY_BROKER_URL"] = f"redis://{servers.valkey.address}/{db.group(1) if db else 1}"
    return env


def resolve_pod(
    doc: dict[str, Any],
    manifests: list[dict[str, Any]],
    image: tuple[dict[str, str], list[str]],
    servers: Servers,
    scratch: Path,
    static_root: Path,
    venv_bin: Path,
    sandbox_stage: Path | None = None,
) -> tuple[list[Container], list[Container]]:
    """(init containers, containers) of a workload, ready to run; sandboxed (as the pod's
    user, read-only but for their /tmp folder) when a sandbox_stage folder is given."""
    template = doc["spec"]["template"]
    spec = template["spec"]
    component = component_of(doc)
    pod = {
        "name": f"{doc['metadata']['name']}-smoke",
        "namespace": doc["metadata"].get("namespace", "default"),
        "labels": template.get("metadata", {}).get("labels", {}) or {},
        "serviceAccountName": spec.get("serviceAccountName", "default"),
    }
    grace = float(spec.get("terminationGracePeriodSeconds", 30))
    image_env, image_cmd = image

    def one(container: dict[str, Any]) -> Container:
        tmp = scratch / f"{component}-{container['name']}"
        tmp.mkdir(parents=True, exist_ok=True)
        env = local_env(chart_env(container, manifests, pod), image_env, servers, tmp, static_root, venv_bin)
        # Every process shares this host: each container port becomes a free local port,
        # given to the process through the variable that sets it (the web's http port is
        # GUNICORN_BIND, every kind's metrics port METRICS_PORT).
        port_map: dict[int, int] = {}
        for port in container.get("ports") or []:
            local = free_port()
            if port.get("name") == "http" and component == "web":
                env["GUNICORN_BIND"] = f"{LOOPBACK}:{local}"
            elif port.get("name") == "metrics":
                env["METRICS_PORT"] = str(local)
            else:
                raise SmokeFailed(f"{component}: container port {port} is neither the web's http nor a metrics port")
            port_map[int(port["containerPort"])] = local
        command = container.get("command")
        args = container.get("args")
        # No command: the image's CMD, which `args` replaces when given.
        argv = (list(args) if args is not None else list(image_cmd)) if command is None else [*command, *(args or [])]
        argv = [expand(retmp(str(part), tmp), env) for part in argv]
        sandbox = None
        if sandbox_stage is not None:
            sandbox = Sandbox.for_container(container, spec, writable=tmp, stage=sandbox_stage)
            sandbox.prepare()
        return Container(component, container["name"], container, argv, env, grace, tmp, port_map, sandbox=sandbox)

    inits = [one(c) for c in spec.get("initContainers", []) or []]
    return inits, [one(c) for c in spec["containers"]]


# --- processes ---


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


# --- probes ---


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


# --- the order round trip ---


def api_host(env: dict[str, str]) -> str:
    """A Host the settings allow, as a client through the ingress sends it."""
    for host in env.get("DJANGO_ALLOWED_HOSTS", "").split(","):
        host = host.strip().lstrip(".")
        if host and host != "*":
            return host
    return "orders.example.com"


def publish_user(bootstrap: str, topic: str) -> None:
    """A user.created event, so a production setting ORDER_REQUIRE_KNOWN_USER=true accepts the order.

    It reaches the order service through the consumer container: the order going
    through proves that container works too.
    """
    from kafka import KafkaProducer

    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": "user.created",
        "timestamp": now,
        "version": "1.0",
        "data": {
            "user_id": SMOKE_USER,
            "email": "smoke@example.com",
            "name": "Deploy Smoke",
            "status": "active",
            "created_at": now,
        },
    }
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, request_timeout_ms=5000, delivery_timeout_ms=15000, max_block_ms=15000
    )
    try:
        producer.send(topic, key=SMOKE_USER.encode(), value=json.dumps(event).encode()).get(timeout=15)
        producer.flush(10)
    finally:
        producer.close(5)


def post_order(web: Container, token: str) -> str:
    """POST the README's order through the web port until the user is known; returns the order id."""
    headers = {
        "Host": api_host(web.env),
        "X-Forwarded-Proto": "https",  # what the ingress that ends TLS sends
        "Authorization": f"Token {token}",
        "Content-Type": "application/json",
        "Idempotency-Key": f"deploy-smoke-{uuid.uuid4()}",
    }
    body = json.dumps(ORDER_BODY).encode()
    port = named_port(web, "http")
    deadline = time.monotonic() + ORDER_DEADLINE
    while True:
        status, answer = http_request(port, "POST", "/api/v1/orders/", headers, body, 10)
        if status == 201:
            order_id = str(json.loads(answer)["id"])
            note(f"order {order_id} created (201)")
            return order_id
        waiting_for_user = status == 422 and b"user_not_found" in answer
        if not waiting_for_user or time.monotonic() > deadline:
            raise SmokeFailed(f"POST /api/v1/orders/ answered {status}: {answer[:500]!r}", [web.log])
        time.sleep(0.5)  # the consumer has not stored the user yet


def named_port(container: Container, name: str) -> int:
    """The local port that the container port called `name` maps to."""
    (port,) = [p["containerPort"] for p in container.spec.get("ports", []) if p.get("name") == name]
    return container.port_map[int(port)]


# What each process kind's /metrics must show once the order went through: the names the
# chart's dashboard and alerts rely on for that kind.
METRICS_EXPECTED = {
    "web": ("orders_created_total", "django_http_responses_total_by_status_total"),
    "worker": ("kafka_events_published_total", "outbox_delivery_delay_seconds_bucket", "outbox_events_pending"),
    "beat": ("process_start_time_seconds",),
    "consumer": ("kafka_events_consumed_total", "kafka_consumer_lag_messages"),
}


def scrape_metrics(container: Container) -> None:
    """GET /metrics on the container's metrics port (as Prometheus does, by pod IP); each expected name is there."""
    status, body = http_request(named_port(container, "metrics"), "GET", "/metrics", {"Host": f"{POD_IP}:9100"})
    if status != 200:
        raise SmokeFailed(f"{container.label}: GET /metrics on its metrics port answered {status}", [container.log])
    text = body.decode(errors="replace")
    missing = [name for name in METRICS_EXPECTED.get(container.pod, ()) if f"\n{name}" not in f"\n{text}"]
    if missing:
        raise SmokeFailed(f"{container.label}: /metrics lacks {', '.join(missing)}", [container.log])
    note(f"{container.label}: /metrics answers on its port ({len(text.splitlines())} lines)")


def wait_for_event(bootstrap: str, topic: str, order_id: str, logs: list[Path]) -> None:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"deploy-smoke-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )
    try:
        deadline = time.monotonic() + EVENT_DEADLINE
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    event = json.loads(record.value)
                    if event.get("data", {}).get("order_id") == order_id:
                        note(f"{topic}: event {event['event_id']} for the order, partition {record.partition}")
                        return
    finally:
        consumer.close()
    raise SmokeFailed(f"no {topic} event for order {order_id} within {EVENT_DEADLINE:.0f}s", logs)


# --- stopping ---


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


# --- the run ---

_LOG_PROBLEM = re.compile(r"\bERROR\b|\bCRITICAL\b|^Traceback ")


def report_log_problems(containers: list[Container]) -> None:
    """Print the ERROR/CRITICAL lines and tracebacks the processes logged, though the run passed:
    what a pod would log at every start is worth a look (they do not fail the run)."""
    for container in containers:
        try:
            lines = container.log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        found = [line for line in lines if _LOG_PROBLEM.search(line)]
        for line in found[:5]:
            note(f"warning: {container.label} logged: {line.strip()[:300]}")
        if len(found) > 5:
            note(f"warning: {container.label} logged {len(found) - 5} more such lines ({container.log.name})")


def start_servers(scratch: Path, database: str, servers: list[Server]) -> Servers:
    pg = postgres.start(scratch / "postgres", free_port(), database=database, durable=False)
    servers.append(pg)
    vk = valkey.start(scratch / "valkey", free_port(), durable=False)
    servers.append(vk)
    kf = kafka.start(free_port(), log_path=scratch / "kafka.log")
    servers.append(kf)
    note(f"PostgreSQL {pg.address} (database {database!r}), Valkey {vk.address}, Kafka {kf.address}")
    return Servers(pg, vk, kf, database)


def smoke(repo: Path, scratch: Path, servers: list[Server], running: list[Container], sandboxed: bool) -> None:
    logs = scratch / "logs"
    logs.mkdir()
    venv_bin = Path(sys.executable).parent
    with timed(f"render the chart (values.yaml + ci/{chart.DEFAULT_VALUES_FILE.name}, TLS at the ingress)"):
        try:
            manifests = render(chart.merge_values(chart.chart_values([chart.DEFAULT_VALUES_FILE]), TLS_AT_INGRESS))
        except CheckFailed as exc:
            raise SmokeFailed(str(exc)) from exc
        except Exception as exc:
            raise SmokeFailed(f"rendering the chart failed: {exc}") from exc
        deployments, migrate_job = workloads(manifests)
        note(", ".join(resource_name(d) for d in [migrate_job, *deployments.values()]))
    image = image_env_and_cmd(repo)
    migrate_container = migrate_job["spec"]["template"]["spec"]["containers"][0]
    database = chart_env(migrate_container, manifests, {"name": "", "namespace": "", "labels": {}}).get(
        "POSTGRES_DB", "orders"
    )
    with timed("start embedded PostgreSQL, Valkey, Kafka"):
        addresses = start_servers(scratch, database, servers)
    static_root = scratch / "staticfiles"
    pods: dict[str, tuple[list[Container], list[Container]]] = {}
    stage = scratch / "sandbox-stage" if sandboxed else None
    for name, doc in [("migrate", migrate_job), *deployments.items()]:
        pods[name] = resolve_pod(doc, manifests, image, addresses, scratch / "pods", static_root, venv_bin, stage)
    web = pods["web"][1][0]
    if web.sandbox is not None:
        note(f"sandbox: every container as uid {web.sandbox.uid}, gid {web.sandbox.gid}, read-only but its /tmp")

    with timed("collectstatic (the image does it at build)"):
        command = ["python", "manage.py", "collectstatic", "--noinput", "--verbosity", "0"]
        result = exec_in(web, repo, command, 300, as_pod=False)
        if result.returncode != 0:
            raise SmokeFailed(f"collectstatic exited {result.returncode}:\n{result.stdout}{result.stderr}")
    with timed("migrate Job"):
        inits, containers = pods["migrate"]
        migrate = [*inits, *containers]
        for container in migrate:
            note(f"{container.label}: {shlex.join(container.argv)}")
            run_to_end(container, repo, logs, MIGRATE_TIMEOUT)
    with timed("Kafka topics (Strimzi's KafkaTopics in a cluster)"):
        result = exec_in(web, repo, ["python", "manage.py", "create_kafka_topics"], 120, as_pod=False)
        if result.returncode != 0:
            raise SmokeFailed(f"create_kafka_topics exited {result.returncode}:\n{result.stdout}{result.stderr}")
    with timed("start web, worker, beat, consumer"):
        for component in COMPONENTS:
            inits, containers = pods[component]
            for container in inits:
                run_to_end(container, repo, logs, MIGRATE_TIMEOUT)
            for container in containers:
                start(container, repo, logs)
                running.append(container)
    for container in list(running):
        with timed(f"{container.label}: probes"):
            wait_for_probes(container, repo)

    with timed("create an API token for the customer (manage.py create_api_token in the web container)"):
        command = ["python", "manage.py", "create_api_token", "deploy-smoke", "--user-id", SMOKE_USER]
        result = exec_in(web, repo, command, 60)
        if result.returncode != 0 or not result.stdout.strip():
            raise SmokeFailed(f"create_api_token exited {result.returncode}: {result.stderr.strip()}")
        token = result.stdout.strip().splitlines()[-1]
    topics = web.env
    with timed("publish user.created (the consumer stores the user)"):
        publish_user(addresses.kafka.address, topics.get("KAFKA_TOPIC_USER_CREATED", "user.created"))
    with timed("POST /api/v1/orders/ through the web port"):
        order_id = post_order(web, token)
    with timed("order.created on Kafka (relayed by the worker)"):
        topic = topics.get("KAFKA_TOPIC_ORDER_CREATED", "order.created")
        wait_for_event(addresses.kafka.address, topic, order_id, [c.log for c in running])
    with timed("scrape /metrics of every process on its metrics port"):
        for container in running:
            scrape_metrics(container)

    dead = [c for c in running if c.popen is not None and c.popen.poll() is not None]
    if dead:
        raise SmokeFailed(f"exited during the run: {', '.join(c.label for c in dead)}", [c.log for c in dead])
    with timed("SIGTERM every process (after its preStop hook); each must exit within its grace period"):
        problems: dict[str, str] = {}
        threads = [threading.Thread(target=stop_gracefully, args=(c, repo, problems)) for c in running]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if problems:
            failed = [c for c in running if c.label in problems]
            raise SmokeFailed("; ".join(f"{k}: {v}" for k, v in problems.items()), [c.log for c in failed])
    report_log_problems(migrate + running)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(repo: Path, keep: bool = False, sandbox: bool | None = None) -> int:
    """sandbox None: sandboxed when this process can (root with unshare and setpriv, as in CI)."""
    os.chdir(repo)
    why_not = sandbox_unavailable()
    if sandbox and why_not:
        print(f"deploy-smoke: cannot sandbox: {why_not}", file=sys.stderr)
        return 2
    sandboxed = why_not is None if sandbox is None else sandbox
    if not sandboxed:
        note(f"no sandbox ({why_not or '--no-sandbox'}): the containers run as the current user, file system writable")
    # `timeout 300` in CI sends SIGTERM: stop what was started instead of leaving it running.
    signal.signal(signal.SIGTERM, _terminate)
    # Sandboxed, each process's /tmp folder is mounted over /tmp: the folders live elsewhere.
    scratch = Path(tempfile.mkdtemp(prefix="orders-deploy-smoke-", dir=SCRATCH_PARENT if sandboxed else None))
    servers: list[Server] = []
    running: list[Container] = []
    code = 0
    try:
        smoke(repo, scratch, servers, running, sandboxed)
    except SmokeFailed as exc:
        code = 1
        print(f"\ndeploy-smoke: FAILED: {exc}", file=sys.stderr, flush=True)
        for log in exc.logs:
            tail = log_tail(log, LOG_TAIL_LINES)
            print(f"\n--- last {LOG_TAIL_LINES} lines of {log.name} ---\n{tail}", file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
        print("\ndeploy-smoke: interrupted; stopping everything it started", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for container in running:
            kill_group(container)
        for server in reversed(servers):
            try:
                server.stop()
            except Exception as exc:
                print(f"deploy-smoke: could not stop {server.name}: {exc}", file=sys.stderr)
        if keep:
            print(f"deploy-smoke: logs and data kept in {scratch}", flush=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print("\n=== deploy-smoke timings ===")
    for name, seconds in _TIMINGS:
        print(f"  {seconds:6.1f}s  {name}")
    outcome = {0: "passed", 130: "interrupted"}.get(code, "FAILED")
    print(f"  {time.monotonic() - _START:6.1f}s  total: {outcome}", flush=True)
    return code
