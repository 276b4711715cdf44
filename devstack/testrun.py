"""`make test`: pytest against the servers the environment names, else embedded ones for this session only.

Embedded servers live in a temporary folder on free ports and are removed at
the end, also when pytest fails or is interrupted. Kafka is not started here:
the `kafka_bootstrap` fixture in conftest.py starts a broker when a test asks.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

from devstack import postgres, valkey
from devstack.environment import named
from devstack.output import error, step
from devstack.procs import DevstackError, Server, free_port


def start_servers(scratch: Path, servers: list[Server]) -> dict[str, str]:
    exported: dict[str, str] = {}
    if named("postgres"):
        step(f"PostgreSQL: using {os.environ['POSTGRES_SERVER']}:{os.environ.get('POSTGRES_PORT', '5432')} (from env)")
    else:
        server = postgres.start(scratch / "postgres", free_port(), database="postgres", durable=False)
        servers.append(server)
        exported.update(
            POSTGRES_SERVER=server.host, POSTGRES_PORT=str(server.port), POSTGRES_USER="postgres", POSTGRES_PASSWORD=""
        )
        step(f"PostgreSQL: embedded, temporary, on {server.address}")
    if named("redis"):
        step(f"Redis: using {os.environ['REDIS_HOST']}:{os.environ.get('REDIS_PORT', '6379')} (from env)")
    else:
        server = valkey.start(scratch / "valkey", free_port(), durable=False)
        servers.append(server)
        exported.update(REDIS_HOST=server.host, REDIS_PORT=str(server.port), REDIS_PASSWORD="")
        step(f"Redis: embedded Valkey, temporary, on {server.address}")
    return exported


def run(repo: Path, pytest_args: list[str]) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="orders-test-"))
    servers: list[Server] = []
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, frame: FrameType | None) -> None:
        # Ctrl-C reaches pytest from the terminal by itself; SIGTERM sent to us alone is passed on.
        if child is not None and signum == signal.SIGTERM:
            child.send_signal(signum)
        elif child is None:
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, forward)
    try:
        env = dict(os.environ)
        # The test settings come from pyproject.toml; an exported DJANGO_SETTINGS_MODULE would beat them
        # (importing orders_project sets one for Celery). Pass --ds to pytest to choose another.
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.update(start_servers(scratch, servers))
        step(f"python -m pytest {' '.join(pytest_args)}".rstrip())
        child = subprocess.Popen([sys.executable, "-m", "pytest", *pytest_args], cwd=repo, env=env)
        signal.signal(signal.SIGINT, forward)
        return child.wait()
    except KeyboardInterrupt:
        if child is not None:
            child.wait()
        return 130
    except DevstackError as exc:
        error(str(exc))
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for server in reversed(servers):
            try:
                server.stop()
            except Exception as exc:
                error(f"could not stop {server.name}: {exc}")
        shutil.rmtree(scratch, ignore_errors=True)
