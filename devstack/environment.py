"""Which servers the environment names, and the env file that `make dev` writes."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from devstack.procs import LOOPBACK, port_accepts

# The variable whose presence means "use this server, start nothing for it".
NAMING_VARIABLE = {
    "postgres": "POSTGRES_SERVER",
    "redis": "REDIS_HOST",
    "kafka": "KAFKA_BOOTSTRAP_SERVERS",
}
# Fixed loopback ports of the `make dev` servers, away from the standard 5432/6379
# so that a server the user already runs is left alone.
DEV_POSTGRES_PORT = 55432
DEV_VALKEY_PORT = 56379
DEV_KAFKA_PORT = 9092
_LOCAL_HOSTS = {LOOPBACK, "localhost"}


def _is_dev_env_value(kind: str, environ: Mapping[str, str]) -> bool:
    """True if the value is the address of a `make dev` server, as .dev/env exports it.

    A shell that sourced .dev/env names those servers; they are still ours to
    start. Kafka on 127.0.0.1:9092 counts as ours only when nothing answers there
    (a Kafka the user runs on that port is used as named).
    """
    if kind == "postgres":
        return environ.get("POSTGRES_SERVER", "") in _LOCAL_HOSTS and environ.get("POSTGRES_PORT") == str(
            DEV_POSTGRES_PORT
        )
    if kind == "redis":
        return environ.get("REDIS_HOST", "") in _LOCAL_HOSTS and environ.get("REDIS_PORT") == str(DEV_VALKEY_PORT)
    value = environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    return value == f"{LOOPBACK}:{DEV_KAFKA_PORT}" and not port_accepts(LOOPBACK, DEV_KAFKA_PORT)


def named(kind: str, environ: Mapping[str, str] | None = None) -> bool:
    """True if the environment names a server of this kind to use as is.

    An empty value counts as unset, and so does the address of a `make dev`
    server (from a sourced .dev/env).
    """
    environ = os.environ if environ is None else environ
    if not environ.get(NAMING_VARIABLE[kind], "").strip():
        return False
    return not _is_dev_env_value(kind, environ)


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """A file for `set -a; . .dev/env; set +a`: run manage.py against the dev servers from another shell."""
    lines = ["# Written by `make dev`: the addresses of the servers it started.", "# Use: set -a; . .dev/env; set +a"]
    lines += [f"{key}={shlex.quote(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
