"""Which servers the environment names, and the env file that `make dev` writes."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

# The variable whose presence means "use this server, start nothing for it".
NAMING_VARIABLE = {
    "postgres": "POSTGRES_SERVER",
    "redis": "REDIS_HOST",
    "kafka": "KAFKA_BOOTSTRAP_SERVERS",
}


def named(kind: str, environ: Mapping[str, str] | None = None) -> bool:
    """True if the environment names a server of this kind (an empty value counts as unset)."""
    environ = os.environ if environ is None else environ
    return bool(environ.get(NAMING_VARIABLE[kind], "").strip())


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """A file for `set -a; . .dev/env; set +a`: run manage.py against the dev servers from another shell."""
    lines = ["# Written by `make dev`: the addresses of the servers it started.", "# Use: set -a; . .dev/env; set +a"]
    lines += [f"{key}={shlex.quote(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
