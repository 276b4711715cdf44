"""Fresh servers for one figure: PostgreSQL, Valkey and (when asked) Tansu, migrated, gone after.

PostgreSQL is initdb'd and migrated once per bench process; each figure's server starts from a
copy of that cluster (the same tables every time, without paying initdb and migrate again).

Every figure that depends on servers gets its own (Tansu's memory storage slows
as data piles up, and a database full of the last figure's rows changes the
next one's plans). PostgreSQL runs with fsync off, like the test servers: the
figures and their bare baselines use the same server, so the ratio holds.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack import kafka, postgres, valkey
from devstack.procs import free_port

SECRET_KEY = "bench-only-secret-key-" + "b" * 40
DATABASE = "orders"


@dataclass
class Stack:
    repo: Path
    folder: Path
    env: dict[str, str]

    @property
    def dsn(self) -> str:
        return f"host={self.env['POSTGRES_SERVER']} port={self.env['POSTGRES_PORT']} user=postgres dbname={DATABASE}"

    def manage(self, *args: str, timeout: float = 600) -> str:
        """Run manage.py with this stack's env; returns its stdout (raises with all its output on failure)."""
        return self._run("manage.py", *args, timeout=timeout)

    def bench(self, name: str, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
        """Run `python -m devstack.bench NAME` (a bench inside Django) with this stack's env, `env`
        over it; returns its stdout."""
        return self._run("-m", "devstack.bench", name, *args, timeout=timeout, env=env)

    def bench_figures(self, name: str, *args: str, timeout: float = 600) -> dict[str, Any]:
        """Run a bench as `bench` does and return the JSON of its last `figures: {...}` line."""
        out = self.bench(name, *args, timeout=timeout)
        found = re.search(r"^figures: (.*)$", out, re.M)
        if found is None:
            raise RuntimeError(f"no figures in:\n{out}")
        return dict(json.loads(found.group(1)))

    def _run(self, *args: str, timeout: float, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, *args],
            cwd=self.repo,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout


def production_env(repo: Path, **servers: str) -> dict[str, str]:
    """Production settings (debug off) without what a load test on plain HTTP cannot use:
    the HTTPS redirect and the rate limits."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("POSTGRES_", "REDIS_", "KAFKA_"))}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=SECRET_KEY,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_HSTS_SECONDS="0",
        API_THROTTLE_WRITE_RATE="off",
        API_THROTTLE_READ_RATE="off",
        API_THROTTLE_ANON_RATE="off",
        ORDER_REQUIRE_KNOWN_USER="false",
        # The request path's Redis deadline is 50 ms (a healthy Redis answers in well under
        # one): with the load generator on the same 2 cores, and the machine shared, a
        # read now and then waits longer for a core and the create answers 503, which
        # fails the run. The bench measures CPU and throughput, not that deadline.
        REDIS_REQUEST_TIMEOUT_MS="1000",
        LOG_LEVEL="WARNING",
        POSTGRES_USER="postgres",
        POSTGRES_PASSWORD="",
        POSTGRES_DB=DATABASE,
        REDIS_PASSWORD="",
        **servers,
    )
    return env


_migrated_home: Path | None = None  # see _migrated_cluster


def _migrated_cluster(repo: Path) -> Path:
    """A PostgreSQL home (cluster stopped) initdb'd and migrated once in this process.

    initdb and migrate took ~2.5 s of every figure on a fast machine and three times that on a
    slow one, to build the same tables; a copy of the cluster takes a tenth of a second.
    """
    global _migrated_home
    if _migrated_home is None:
        folder = Path(tempfile.mkdtemp(prefix="orders-bench-migrated-"))
        atexit.register(shutil.rmtree, folder, True)
        home = folder / "postgres"
        pg = postgres.start(home, free_port(), database=DATABASE, durable=False)
        try:
            # migrate reaches neither Redis nor Kafka: addresses where nothing listens.
            servers = {"POSTGRES_SERVER": pg.host, "POSTGRES_PORT": str(pg.port), "REDIS_HOST": "127.0.0.1",
                       "REDIS_PORT": "1", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}  # fmt: skip
            Stack(repo=repo, folder=folder, env=production_env(repo, **servers)).manage("migrate", "--noinput")
        finally:
            pg.stop()
        _migrated_home = home
    return _migrated_home


@contextmanager
def fresh(repo: Path, *, kafka_broker: bool = False, full_page_writes: bool = False) -> Iterator[Stack]:
    """Fresh servers; `full_page_writes`: PostgreSQL writes WAL as a production server does (still no fsync)."""
    folder = Path(tempfile.mkdtemp(prefix="orders-bench-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, True)
        # cp -a keeps the files' owner (the system user PostgreSQL runs as when we are root).
        subprocess.run(["cp", "-a", str(_migrated_cluster(repo)), str(folder / "postgres")], check=True)
        pg = postgres.start(
            folder / "postgres", free_port(), database=DATABASE, durable=False, full_page_writes=full_page_writes
        )
        stack.callback(pg.stop)
        redis = valkey.start(folder / "valkey", free_port(), durable=False)
        stack.callback(redis.stop)
        servers = {
            "POSTGRES_SERVER": pg.host,
            "POSTGRES_PORT": str(pg.port),
            "REDIS_HOST": redis.host,
            "REDIS_PORT": str(redis.port),
        }
        if kafka_broker:
            broker = kafka.start(free_port(), log_path=folder / "tansu.log")
            stack.callback(broker.stop)
            servers["KAFKA_BOOTSTRAP_SERVERS"] = broker.address
        else:
            servers["KAFKA_BOOTSTRAP_SERVERS"] = "127.0.0.1:1"  # nothing: the figure needs no Kafka
        yield Stack(repo=repo, folder=folder, env=production_env(repo, **servers))
