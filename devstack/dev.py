"""`make dev`: the servers the environment does not name, then migrate, then the Procfile.dev processes.

Data of the embedded PostgreSQL and Valkey lives in .dev/ and survives restarts;
the embedded Kafka broker keeps everything in memory. Ctrl-C or SIGTERM stops
the processes first and the servers after them. A run that was killed leaves
pid files and maybe running servers behind; the next run stops those first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer

from devstack import kafka, postgres, valkey
from devstack.environment import (
    DEV_KAFKA_PORT,
    DEV_POSTGRES_PORT,
    DEV_VALKEY_PORT,
    named,
    write_env_file,
)
from devstack.output import elapsed, error, step
from devstack.procs import (
    LOOPBACK,
    OWNER_ENV,
    DevstackError,
    Server,
    ensure_port_free,
    port_accepts,
    process,
    read_pid,
    sweep_leftovers,
)

WEB_HOST, WEB_PORT = LOOPBACK, 8000
SIGNAL_RETURN_CODES = (130, 143)  # honcho's codes for "stopped by SIGINT/SIGTERM"


class Interrupted(Exception):
    """SIGTERM or SIGHUP arrived while servers were starting."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def running_devstack(home: Path) -> int | None:
    """The pid of another live `make dev` that runs from `home`, if any."""
    proc = process(read_pid(home / "devstack.pid"))
    if proc is None or proc.pid == os.getpid():
        return None
    try:
        if any("devstack" in part for part in proc.cmdline()):
            return int(proc.pid)
    except Exception:
        return None
    return None


def recover(home: Path) -> None:
    """Stop what a run that crashed or was killed left running from `home`."""
    if postgres.stop(home / "postgres"):
        step("stopped a PostgreSQL that an earlier run left running")
    leftovers = sweep_leftovers(home)
    if leftovers:
        step(f"stopped processes that an earlier run left running: {', '.join(leftovers)}")
    if kafka.stop_leftover(home / "kafka.pid"):
        step("stopped a Kafka broker that an earlier run left running")


def manage(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=repo, text=True, check=False)


def has_command(repo: Path, name: str) -> bool:
    result = subprocess.run(
        [sys.executable, "manage.py", "help", "--commands"], cwd=repo, capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and name in result.stdout.split()


def start_servers(home: Path, servers: list[Server]) -> dict[str, str]:
    """Start an embedded server for every kind the environment does not name; returns the variables to export."""
    exported: dict[str, str] = {}
    if named("postgres"):
        step(f"PostgreSQL: using {os.environ['POSTGRES_SERVER']}:{os.environ.get('POSTGRES_PORT', '5432')} (from env)")
    else:
        step("PostgreSQL: starting the embedded server (data in .dev/postgres) ...")
        database = os.environ.get("POSTGRES_DB") or "orders"
        server = postgres.start(home / "postgres", DEV_POSTGRES_PORT, database=database)
        servers.append(server)
        exported.update(
            POSTGRES_SERVER=server.host,
            POSTGRES_PORT=str(server.port),
            POSTGRES_USER=postgres.SUPERUSER,
            POSTGRES_PASSWORD="",
            POSTGRES_DB=database,
        )
        step(f"PostgreSQL: ready on {server.address}, database {database!r}")
    if named("redis"):
        step(f"Redis: using {os.environ['REDIS_HOST']}:{os.environ.get('REDIS_PORT', '6379')} (from env)")
    else:
        step("Redis: starting the embedded Valkey server (data in .dev/valkey) ...")
        server = valkey.start(home / "valkey", DEV_VALKEY_PORT)
        servers.append(server)
        exported.update(REDIS_HOST=server.host, REDIS_PORT=str(server.port), REDIS_PASSWORD="")
        step(f"Redis: Valkey ready on {server.address}")
    if named("kafka"):
        step(f"Kafka: using {os.environ['KAFKA_BOOTSTRAP_SERVERS']} (from env)")
    else:
        step("Kafka: starting the embedded Tansu broker (in memory) ...")
        server = kafka.start(DEV_KAFKA_PORT, log_path=home / "kafka.log", pid_file=home / "kafka.pid")
        servers.append(server)
        exported.update(KAFKA_BOOTSTRAP_SERVERS=server.address)
        step(f"Kafka: Tansu ready on {server.address}")
    return exported


def summary(exported: dict[str, str], answered_after: float) -> str:
    base = f"http://{WEB_HOST}:{WEB_PORT}"
    pg = ".dev/postgres" if "POSTGRES_SERVER" in exported else f"external {os.environ['POSTGRES_SERVER']}"
    redis = ".dev/valkey" if "REDIS_HOST" in exported else f"external {os.environ['REDIS_HOST']}"
    kafka_where = (
        "in memory (empty after each restart)"
        if "KAFKA_BOOTSTRAP_SERVERS" in exported
        else f"external {os.environ['KAFKA_BOOTSTRAP_SERVERS']}"
    )
    rule = "-" * 78
    return "\n".join(
        [
            rule,
            f" Order service is up (answered after {answered_after:.1f} s). Ctrl-C stops everything.",
            f"   API (browsable) {base}/api/v1/orders/",
            f"   Admin           {base}/admin/",
            f"   OpenAPI docs    {base}/api/docs/",
            f"   Metrics         {base}/metrics (web); worker, beat, consumer on "
            + ", ".join(f":{port}" for port in DEV_METRICS_PORTS.values()),
            f" Data: PostgreSQL {pg}, Redis {redis} (kept across restarts); Kafka {kafka_where}.",
            " Other shell: set -a; . .dev/env; set +a   (the addresses above), then",
            "   .venv/bin/python manage.py createsuperuser                  staff user for /admin/",
            "   .venv/bin/python manage.py create_api_token NAME --service  API token (any customer)",
            " make dev-reset wipes .dev/ (all dev data).",
            rule,
        ]
    )


def announce_when_up(exported: dict[str, str], done: threading.Event) -> None:
    """Print the closing block once the web server answers."""
    deadline = time.monotonic() + 300
    while not done.is_set() and time.monotonic() < deadline:
        if port_accepts(WEB_HOST, WEB_PORT):
            print(summary(exported, elapsed()), flush=True)
            return
        time.sleep(0.1)


# /metrics of each background process on a port of its own (the default 9100 would
# collide on one machine); the web (runserver) shows its own at /metrics on WEB_PORT.
DEV_METRICS_PORTS = {"worker": 9101, "beat": 9102, "consumer": 9103}


def process_env(repo: Path, name: str) -> dict[str, str]:
    """The environment of one Procfile.dev process: ours, plus its metrics port, and for the
    prefork worker the folder its pool processes share their metrics in (emptied at its start)."""
    env = dict(os.environ)
    if name in DEV_METRICS_PORTS:
        env["METRICS_PORT"] = str(DEV_METRICS_PORTS[name])
    if name == "worker":
        env["PROMETHEUS_MULTIPROC_DIR"] = str(repo / ".dev" / "prometheus-worker")
    return env


def run_processes(repo: Path, exported: dict[str, str]) -> int:
    procfile = parse_procfile((repo / "Procfile.dev").read_text())
    if not procfile.processes:
        raise DevstackError("Procfile.dev lists no processes")
    ensure_port_free(WEB_HOST, WEB_PORT, "web server", "Stop that program (is another `make dev` running?).")
    for name, port in DEV_METRICS_PORTS.items():
        ensure_port_free(WEB_HOST, port, f"{name}'s metrics port", "Is another `make dev` running? Stop it.")
    manager = Manager(Printer(sys.stdout))
    for name, command in procfile.processes.items():
        manager.add_process(name, command, env=process_env(repo, name), cwd=str(repo))
    step(f"starting {', '.join(procfile.processes)} (Procfile.dev) ...")
    done = threading.Event()
    threading.Thread(target=announce_when_up, args=(exported, done), daemon=True).start()
    # honcho handles SIGINT/SIGTERM; a closed terminal (SIGHUP) takes the same way out.
    signal.signal(signal.SIGHUP, lambda signum, frame: os.kill(os.getpid(), signal.SIGTERM))
    try:
        manager.loop()  # handles SIGINT/SIGTERM itself: stops every process, then returns
    finally:
        done.set()
    code = manager.returncode or 0
    if code in SIGNAL_RETURN_CODES:
        return 0
    if code:
        error(f"a process exited with code {code}; everything was stopped")
    return int(code)


def run(repo: Path) -> int:
    home = (repo / ".dev").resolve()
    home.mkdir(exist_ok=True)
    other = running_devstack(home)
    if other is not None:
        error(f"`make dev` already runs from this folder (pid {other}); stop it first (Ctrl-C there, or kill {other})")
        return 1
    (home / "devstack.pid").write_text(f"{os.getpid()}\n")
    os.environ[OWNER_ENV] = str(home)  # every child inherits it: how a later run finds leftovers
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    servers: list[Server] = []
    try:
        recover(home)
        exported = start_servers(home, servers)
        exported["DJANGO_DEBUG"] = "true"
        # Locally there is no user service: accept orders for users the cache has not seen.
        exported.setdefault("ORDER_REQUIRE_KNOWN_USER", os.environ.get("ORDER_REQUIRE_KNOWN_USER", "false"))
        os.environ.update(exported)
        os.environ["PYTHONUNBUFFERED"] = "1"
        venv_bin = str(Path(sys.executable).parent)
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
        write_env_file(home / "env", exported)

        step("migrating the database ...")
        if manage(repo, "migrate", "--noinput").returncode != 0:
            raise DevstackError("manage.py migrate failed (see above)")
        if has_command(repo, "create_kafka_topics"):
            step("creating Kafka topics ...")
            if manage(repo, "create_kafka_topics").returncode != 0:
                raise DevstackError("manage.py create_kafka_topics failed (see above)")
        return run_processes(repo, exported)
    except (Interrupted, KeyboardInterrupt):
        step("interrupted")
        return 130
    except DevstackError as exc:
        error(str(exc))
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for server in reversed(servers):
            step(f"stopping {server.name} ...")
            try:
                server.stop()
            except Exception as exc:
                error(f"could not stop {server.name}: {exc}")
        (home / "devstack.pid").unlink(missing_ok=True)
        if servers:
            step("stopped")
