"""`make deploy-smoke`'s run, step by step (devstack/deploy_smoke/__init__.py says what it
proves and what differs from a pod): render, start servers, migrate, start every
container, probes, an order end to end, /metrics, SIGTERM."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from devstack import kafka, postgres, valkey
from devstack.deploy import chart
from devstack.deploy_smoke.image import image_env_and_cmd
from devstack.deploy_smoke.pod import COMPONENTS, Container, Host, Servers, render_chart
from devstack.deploy_smoke.probes import wait_for_probes
from devstack.deploy_smoke.processes import exec_in, kill_group, run_to_end, start, stop_gracefully
from devstack.deploy_smoke.round_trip import (
    SMOKE_USER,
    post_order,
    publish_user,
    scrape_metrics,
    wait_for_event,
)
from devstack.deploy_smoke.steps import SmokeFailed, note, print_timings, timed
from devstack.procs import Server, free_port, log_tail
from devstack.sandbox import SCRATCH_PARENT
from devstack.sandbox import available as sandbox_unavailable

# Deadline (seconds) of the migrate Job and init containers. The whole run takes ~40 s;
# CI wraps it in `timeout 300`.
MIGRATE_TIMEOUT = 180.0
LOG_TAIL_LINES = 40


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
        rendered = render_chart()
        note(", ".join(chart.resource_name(d) for d in [rendered.migrate_job, *rendered.deployments.values()]))
    with timed("start embedded PostgreSQL, Valkey, Kafka"):
        addresses = start_servers(scratch, rendered.database, servers)
    stage = scratch / "sandbox-stage" if sandboxed else None
    image = image_env_and_cmd(repo)
    pods = rendered.pods(Host(image, addresses, scratch / "pods", scratch / "staticfiles", venv_bin, stage))
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
    print_timings({0: "passed", 130: "interrupted"}.get(code, "FAILED"))
    return code
