"""A rendered workload as local containers: the chart rendered as deploy-smoke and chaos
run it, its Deployments and migrate Job, and each container resolved to a command and
an environment for this host (image ENV, the chart's env, the servers' addresses, a
/tmp folder and ports of its own)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import postgres
from devstack.deploy import chart
from devstack.deploy_smoke.image import IMAGE_WORKDIR
from devstack.deploy_smoke.kube_env import chart_env, expand
from devstack.deploy_smoke.steps import SmokeFailed
from devstack.procs import LOOPBACK, Server, free_port
from devstack.sandbox import Sandbox

COMPONENTS = ("web", "worker", "beat", "consumer")
COMPONENT_LABEL = "app.kubernetes.io/component"
# Added to ci/default-values.yaml (the chart's defaults plus what a deployer must
# add): TLS ends at an ingress, which sends X-Forwarded-Proto, as this run's order
# request does. Without it the app redirects plain HTTP to HTTPS (its production
# default), and nothing could reach the API through the Service.
TLS_AT_INGRESS: dict[str, Any] = {"config": {"DJANGO_SECURE_PROXY_SSL_HEADER": "true"}}
UNWRITABLE_HOME = "/proc/deploy-smoke-nonexistent-home"
# Each workload's (init containers, containers) by name: "migrate", then COMPONENTS.
Pods = dict[str, tuple[list["Container"], list["Container"]]]


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


@dataclass(frozen=True)
class RenderedChart:
    """The chart with ci/default-values.yaml and TLS at the ingress, and the workloads run from it."""

    manifests: list[dict[str, Any]]
    deployments: dict[str, dict[str, Any]]  # by component, in COMPONENTS order
    migrate_job: dict[str, Any]

    @property
    def database(self) -> str:
        """POSTGRES_DB as the migrate Job's container gets it: the database to create."""
        container = self.migrate_job["spec"]["template"]["spec"]["containers"][0]
        no_pod = {"name": "", "namespace": "", "labels": {}}
        return chart_env(container, self.manifests, no_pod).get("POSTGRES_DB", "orders")

    def pods(self, host: Host) -> Pods:
        """Every workload resolved (resolve_pod), "migrate" first."""
        workloads = [("migrate", self.migrate_job), *self.deployments.items()]
        return {name: resolve_pod(doc, self.manifests, host) for name, doc in workloads}


def render_chart() -> RenderedChart:
    values = chart.merge_values(chart.chart_values([chart.DEFAULT_VALUES_FILE]), TLS_AT_INGRESS)
    try:
        manifests = chart.render(values)
    except chart.ChartError as exc:
        raise SmokeFailed(f"the chart refused the values: {exc}") from exc
    except Exception as exc:
        raise SmokeFailed(f"rendering the chart failed: {exc}") from exc
    deployments, migrate_job = workloads(manifests)
    return RenderedChart(manifests, deployments, migrate_job)


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


def retmp(value: str, tmp: Path) -> str:
    """/tmp and paths below it moved into this process's own folder, the image's WORKDIR
    (/app) and paths below it to the checkout (see devstack/deploy_smoke/__init__.py)."""
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
    """The process environment: image ENV, then the chart's, then the overrides
    devstack/deploy_smoke/__init__.py lists."""
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


@dataclass(frozen=True)
class Host:
    """What this machine gives every container it runs."""

    image: tuple[dict[str, str], list[str]]  # the image's ENV and CMD (image.py)
    servers: Servers
    scratch: Path  # each container's /tmp folder goes in here
    static_root: Path  # what collectstatic fills (the image's /app/staticfiles)
    venv_bin: Path  # the image's /opt/venv/bin
    # A folder for the sandbox's mounts; None: no sandbox (as the current user, writable).
    sandbox_stage: Path | None = None


def resolve_pod(
    doc: dict[str, Any], manifests: list[dict[str, Any]], host: Host
) -> tuple[list[Container], list[Container]]:
    """(init containers, containers) of a workload, ready to run; sandboxed (as the pod's
    user, read-only but for their /tmp folder) when the host has a sandbox_stage."""
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
    image_env, image_cmd = host.image

    def one(container: dict[str, Any]) -> Container:
        tmp = host.scratch / f"{component}-{container['name']}"
        tmp.mkdir(parents=True, exist_ok=True)
        env = local_env(
            chart_env(container, manifests, pod), image_env, host.servers, tmp, host.static_root, host.venv_bin
        )
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
        if host.sandbox_stage is not None:
            sandbox = Sandbox.for_container(container, spec, writable=tmp, stage=host.sandbox_stage)
            sandbox.prepare()
        return Container(component, container["name"], container, argv, env, grace, tmp, port_map, sandbox=sandbox)

    inits = [one(c) for c in spec.get("initContainers", []) or []]
    return inits, [one(c) for c in spec["containers"]]


def named_port(container: Container, name: str) -> int:
    """The local port that the container port called `name` maps to."""
    (port,) = [p["containerPort"] for p in container.spec.get("ports", []) if p.get("name") == name]
    return container.port_map[int(port)]
