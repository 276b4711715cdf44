"""The running service for `make chaos`: deploy-smoke's containers, restartable, behind fresh servers.

Everything a pod runs comes from devstack/deploy_smoke (the rendered chart, its env, the
image's ENV, probes, preStop + SIGTERM); this module only adds what chaos needs
on top: replicas, restart after a kill (as Kubernetes would), a second beat,
Kafka behind a TCP proxy that can be cut (Tansu advertises the proxy's port, so
every client of the service goes through it), and restarts of PostgreSQL and
Valkey on the same port and data.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import psycopg

from devstack import kafka, postgres, valkey
from devstack.deploy_smoke.image import image_env_and_cmd
from devstack.deploy_smoke.pod import COMPONENTS, Container, Host, Servers, render_chart
from devstack.deploy_smoke.probes import wait_for_probes
from devstack.deploy_smoke.processes import exec_in, kill_group, start, stop_gracefully
from devstack.deploy_smoke.round_trip import api_host
from devstack.deploy_smoke.steps import SmokeFailed, elapsed
from devstack.procs import LOOPBACK, Server, free_port
from devstack.tcp_proxy import TcpProxy

# Chaos runs more replicas of nothing than the chart's defaults, and fewer where two
# cores cannot carry them: two web pods (so one can drain while the other serves, as
# behind a Service), two workers (so a killed relay's leases are taken over).
REPLICAS = {"web": 2, "worker": 2, "beat": 1, "consumer": 1}
# Short timeouts keep recovery measurable in seconds; the service reads them from env.
ENV_OVERRIDES = {
    "OUTBOX_RELAY_LEASE_SECONDS": "5",
    "ORDER_CONFIRM_DELAY": "5",
    "ORDER_SHIP_DELAY": "10",
    "ORDER_PROCESSOR_INTERVAL": "2",
    "ORDER_REQUIRE_KNOWN_USER": "true",
    "DJANGO_LOG_LEVEL": "WARNING",
}
API_CLIENTS = 32
# manage.py create_api_token NAME --service, for API_CLIENTS names in one process (each run
# of manage.py costs a Django start-up); prints one token a line.
_TOKENS_SCRIPT = f"""
from django.core.management import call_command
for i in range({API_CLIENTS}):
    call_command("create_api_token", f"chaos-load-{{i}}", "--service")
"""


def _pod_port() -> int:
    """A free port below the ephemeral range: a port the kernel hands out (free_port) can be
    taken meanwhile by the source port of one of the load's thousands of connections, and
    the pod would then fail to start (seen: METRICS_PORT already in use)."""
    low, _ = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(200):
        port = random.randint(max(1024, low - 12000), low - 1)
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    return free_port()


def say(message: str) -> None:
    print(f"chaos {elapsed():6.1f}s | {message}", flush=True)


@dataclass
class Pod:
    container: Container
    index: int
    restarts: int = 0
    ready: bool = False

    @property
    def name(self) -> str:
        return f"{self.container.pod}-{self.index}"

    @property
    def pid(self) -> int | None:
        popen = self.container.popen
        return popen.pid if popen is not None and popen.poll() is None else None

    @property
    def port(self) -> int | None:
        return next(iter(self.container.port_map.values()), None)


@dataclass
class Stack:
    repo: Path
    scratch: Path
    servers: list[Server] = field(default_factory=list)
    pods: dict[str, list[Pod]] = field(default_factory=dict)
    templates: dict[str, Container] = field(default_factory=dict)
    addresses: Servers | None = None
    proxy: TcpProxy | None = None
    kafka_direct: str = ""
    tokens: list[str] = field(default_factory=list)
    host: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- servers ---

    def start_servers(self, database: str) -> None:
        pg = postgres.start(self.scratch / "postgres", _pod_port(), database=database, durable=False)
        self.servers.append(pg)
        # Durable: a Redis restart keeps the user replica and queued tasks, as a persisted one does.
        vk = valkey.start(self.scratch / "valkey", _pod_port(), durable=True)
        self.servers.append(vk)
        broker_port = _pod_port()
        # Below the ephemeral range too: these ports are listened on again after a restart or a cut.
        self.proxy = TcpProxy((LOOPBACK, broker_port), port=_pod_port())
        kf = kafka.start(broker_port, log_path=self.scratch / "kafka.log", advertised_port=self.proxy.port)
        self.servers.append(kf)
        # Clients that must not see the outage (the load's producer, the watcher) connect
        # directly; Tansu advertises the proxy's port, so their metadata points there too:
        # they are cut as well, and simply wait. The service's processes get the proxy.
        self.kafka_direct = self.proxy.address
        through_proxy = Server(name="Kafka via proxy", host=LOOPBACK, port=self.proxy.port, stop=lambda: None)
        self.addresses = Servers(pg, vk, through_proxy, database)
        say(f"PostgreSQL {pg.address}, Valkey {vk.address}, Kafka {kf.address} behind proxy {self.proxy.address}")

    @property
    def pg(self) -> Server:
        assert self.addresses is not None
        return self.addresses.postgres

    @property
    def vk(self) -> Server:
        assert self.addresses is not None
        return self.addresses.valkey

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection[Any]:
        """A session of its own on the service's database, as the superuser."""
        assert self.addresses is not None
        return psycopg.connect(
            host=LOOPBACK,
            port=self.pg.port,
            user=postgres.SUPERUSER,
            dbname=self.addresses.database,
            autocommit=autocommit,
            connect_timeout=5,
        )

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def postgres_restart(self) -> None:
        home = self.scratch / "postgres"
        postgres.stop(home)
        assert self.addresses is not None
        postgres.start(home, self.pg.port, database=self.addresses.database, durable=False)

    def valkey_restart(self, down_seconds: float) -> None:
        home = self.scratch / "valkey"
        valkey.stop(home)
        time.sleep(down_seconds)  # the outage's length, not a wait for anything
        restarted = valkey.start(home, self.vk.port, durable=True)
        # Stop the restarted server at the end: the first one's stop knows only its own process
        # (it was left running after every chaos run).
        self.servers = [restarted if server is self.vk else server for server in self.servers]

    # --- the service ---

    def prepare(self) -> None:
        rendered = render_chart()
        self.start_servers(rendered.database)
        assert self.addresses is not None
        venv_bin = Path(sys.executable).parent
        (self.scratch / "logs").mkdir(exist_ok=True)
        image = image_env_and_cmd(self.repo)
        resolved = rendered.pods(
            Host(image, self.addresses, self.scratch / "pods", self.scratch / "staticfiles", venv_bin)
        )
        for name in COMPONENTS:
            _inits, containers = resolved[name]
            self.templates[name] = containers[0]
        web = self.templates["web"]
        self.host = api_host(web.env)
        for command in (
            ["python", "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            ["python", "manage.py", "migrate", "--noinput"],
            ["python", "manage.py", "create_kafka_topics"],
            # One API client per few load threads, as separate services would be: the write
            # throttle is per client (600/min), and one client at chaos's rate would be throttled.
            ["python", "manage.py", "shell", "-c", _TOKENS_SCRIPT],
        ):
            result = exec_in(web, self.repo, command, 300)
            if result.returncode != 0:
                raise SmokeFailed(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-2000:]}")
        self.tokens = result.stdout.split()[-API_CLIENTS:]
        for name in COMPONENTS:
            self.pods[name] = []
            for _ in range(REPLICAS[name]):
                self.add_pod(name)
        for pods in self.pods.values():
            for pod in pods:
                self.wait_ready(pod)

    def add_pod(self, component: str) -> Pod:
        """A new replica of the component: own /tmp, own port, the template's command and env."""
        with self.lock:
            index = len(self.pods[component])
        template = self.templates[component]
        tmp = self.scratch / "pods" / f"{component}-{index}"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {k: (v.replace(str(template.tmp), str(tmp))) for k, v in template.env.items()}
        env.update(ENV_OVERRIDES)
        argv = [part.replace(str(template.tmp), str(tmp)) for part in template.argv]
        # One host: every pod's metrics server needs a port of its own (in a pod, 9100 is its own).
        env["METRICS_PORT"] = str(_pod_port())
        if "PROMETHEUS_MULTIPROC_DIR" not in env:  # prefork worker and gunicorn need one (emptyDir in a pod)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "prometheus")
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
        port_map: dict[int, int] = {}
        if template.port_map:
            port = _pod_port()
            env["GUNICORN_BIND"] = f"{LOOPBACK}:{port}"
            port_map = {k: port for k in template.port_map}
        container = replace(template, argv=argv, env=env, tmp=tmp, port_map=port_map, popen=None)
        container.name = f"{component}-{index}"
        pod = Pod(container, index)
        self._launch(pod)
        with self.lock:
            self.pods[component].append(pod)
        return pod

    def _launch(self, pod: Pod) -> None:
        logs = self.scratch / "logs"
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            start(pod.container, self.repo, logs)

    def wait_ready(self, pod: Pod) -> None:
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            wait_for_probes(pod.container, self.repo)
        pod.ready = True

    def kill9(self, pod: Pod) -> None:
        """SIGKILL to the whole pod (its process group), as an OOM kill or node loss does."""
        pod.ready = False
        kill_group(pod.container)

    def restart(self, pod: Pod, wait: bool = True) -> None:
        """What the kubelet does after the container died: start it again, same pod."""
        pod.restarts += 1
        log = pod.container.log
        if log.exists():  # deploy-smoke's start() truncates: keep the dead one's log beside it
            log.rename(log.with_name(f"{log.stem}.{pod.restarts}.log"))
        self._launch(pod)
        if wait:
            self.wait_ready(pod)

    def terminate(self, pod: Pod) -> str | None:
        """preStop, SIGTERM, wait the grace period (deploy-smoke's stop). None when it exited in time."""
        pod.ready = False
        problems: dict[str, str] = {}
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            stop_gracefully(pod.container, self.repo, problems)
        return next(iter(problems.values()), None)

    def remove(self, pod: Pod) -> None:
        kill_group(pod.container)
        with self.lock:
            self.pods[pod.container.pod].remove(pod)

    def supervise(self, stop: threading.Event, crashes: list[str]) -> threading.Thread:
        """The kubelet's restartPolicy Always: a pod that exited by itself is started again
        (and named in `crashes`: the scenario fails, a process must not die of a fault)."""

        def loop() -> None:
            while not stop.wait(1.0):
                for pod in self.dead_pods():
                    code = pod.container.popen.returncode if pod.container.popen else None
                    crashes.append(f"{pod.name} (exit {code})")
                    say(f"{pod.name} exited {code} by itself; restarting it as the kubelet would")
                    self.restart(pod, wait=False)

        thread = threading.Thread(target=loop, daemon=True, name="kubelet")
        thread.start()
        return thread

    def web_ports(self) -> list[int]:
        return [p.port for p in self.pods.get("web", []) if p.ready and p.port is not None and p.pid]

    def dead_pods(self) -> list[Pod]:
        return [p for pods in self.pods.values() for p in pods if p.ready and p.pid is None]

    def rss_mb(self, component: str) -> float:
        total = 0
        for pod in self.pods.get(component, []):
            if pod.pid is None:
                continue
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(pod.pid)
                total += sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
        return total / 1024 / 1024

    def logs(self) -> list[Path]:
        return [p.container.log for pods in self.pods.values() for p in pods]

    def stop(self) -> None:
        for pods in self.pods.values():
            for pod in pods:
                kill_group(pod.container)
        if self.proxy is not None:
            self.proxy.cut()
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception as exc:
                say(f"could not stop {server.name}: {exc}")
