"""From the plain outbox table to the partitioned one, online (migration 0005 and
`manage.py outbox_partition_upgrade` run this; every step can be run again).

1. A partitioned twin `outbox_outboxevent_next` (columns, defaults and CHECKs copied with
   LIKE, every index of the old table as a partitioned index, primary key (id, created_at))
   and a plain sequence for id (an identity column belongs to its table; the old table's
   ids continue in it).
2. On the old table, without blocking writes: CHECK (created_at < boundary) NOT VALID
   (a moment's lock), VALIDATE (one scan under SHARE UPDATE EXCLUSIVE: reads and writes go
   on), then the unique (id, created_at) and the event_id index CONCURRENTLY. The boundary
   is the start of the UTC day after tomorrow: rows written meanwhile still pass the CHECK.
3. One short transaction (lock_timeout, retried): the old table gets the new primary key
   from its ready index, loses its identity and its UNIQUE(event_id), is renamed
   `outbox_outboxevent_plegacy` and ATTACHed for [MINVALUE, boundary): the validated CHECK
   lets ATTACH skip its scan and the prebuilt indexes are attached, not built. Partitions
   from the boundary on and the default partition are made. Catalog changes only: the
   exclusive lock lasts milliseconds whatever the rows.

An empty old table (a new database, the test database) is dropped instead, and daily
partitions start today. The legacy partition is then an ordinary partition for
retention: dropped once all its rows are published and past retention.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from outbox.partitions import DEFAULT, LEGACY, PARENT, day_start, partition_create

logger = logging.getLogger(__name__)

NEXT = f"{PARENT}_next"
SEQUENCE = f"{PARENT}_row_id_seq"
EVENT_ID_INDEX = "outbox_event_id_idx"
LEGACY_PKEY = f"{LEGACY}_pkey"
LEGACY_EVENT_ID = f"{LEGACY}_event_id_idx"
RANGE_CHECK_PREFIX = "outbox_legacy_before_"
LOCK_TIMEOUT_MS = 2000
LOCK_ATTEMPTS = 30
_INDEXDEF = re.compile(r"^CREATE INDEX (\S+) ON (\S+) USING ")


def is_partitioned() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def _run(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _locked(step: Callable[[], object]) -> None:
    """Run a step that needs a strong lock in its own transaction, waiting at most
    LOCK_TIMEOUT_MS each time so the outbox's traffic never queues long behind it."""
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                _run("SELECT set_config('lock_timeout', %s, true)", [f"{LOCK_TIMEOUT_MS}ms"])
                step()
            return
        except OperationalError:
            if attempt == LOCK_ATTEMPTS:
                raise
            logger.warning("Outbox partition upgrade: lock not granted (attempt %d), trying again", attempt)
            time.sleep(min(attempt, 5))  # back off between attempts: let the traffic through


def _plain_indexes() -> list[tuple[str, str]]:
    """(name, definition) of the old table's non-unique indexes: the parent gets the same."""
    return _run(
        """
        SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = %s::regclass AND NOT i.indisunique ORDER BY c.relname
        """,
        [PARENT],
    )


def _make_twin(indexes: list[tuple[str, str]]) -> None:
    _run(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")
    _run(
        f"CREATE TABLE IF NOT EXISTS {NEXT} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        "PARTITION BY RANGE (created_at)"
    )
    _run(f"ALTER TABLE {NEXT} ALTER COLUMN id SET DEFAULT nextval('{SEQUENCE}')")
    if not _run("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'", [NEXT]):
        _run(f"ALTER TABLE {NEXT} ADD CONSTRAINT {NEXT}_pkey PRIMARY KEY (id, created_at)")
    for name, definition in indexes:
        _run(_INDEXDEF.sub(f"CREATE INDEX IF NOT EXISTS {name}_next ON {NEXT} USING ", definition))
    # Not UNIQUE: a partitioned table's unique index must include created_at, which would not
    # stop a duplicate event_id written at another time. New events get uuid4 ids (a clash is
    # never expected); replays take an advisory lock per rebuilt id (outbox.services.events_replay).
    _run(f"CREATE INDEX IF NOT EXISTS {EVENT_ID_INDEX}_next ON {NEXT} (event_id)")


def _range_check(now: datetime) -> tuple[str, datetime]:
    """The CHECK the legacy partition's range rests on: an existing one still a day ahead, else a new one."""
    for (name,) in _run(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND conname LIKE %s",
        [PARENT, RANGE_CHECK_PREFIX + "%"],
    ):
        boundary = day_start(datetime.strptime(name.removeprefix(RANGE_CHECK_PREFIX), "%Y%m%d").date())
        if boundary > now + timedelta(days=1):
            return name, boundary
        _locked(partial(_run, f"ALTER TABLE {PARENT} DROP CONSTRAINT {name}"))
    boundary = day_start(now.date() + timedelta(days=2))
    name = f"{RANGE_CHECK_PREFIX}{boundary:%Y%m%d}"
    _locked(lambda: _run(f"ALTER TABLE {PARENT} ADD CONSTRAINT {name} CHECK (created_at < %s) NOT VALID", [boundary]))
    return name, boundary


def _index_concurrently(name: str, definition: str) -> None:
    valid = _run("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name])
    if valid and not valid[0][0]:  # left INVALID by an interrupted build: build it again
        _run(f"DROP INDEX CONCURRENTLY {name}")
    _run(f"CREATE {definition.replace('INDEX', 'INDEX CONCURRENTLY IF NOT EXISTS', 1)}")


def _swap(indexes: list[tuple[str, str]], check: str, boundary: datetime, ahead_until: datetime) -> None:
    _run(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
    # Ids go on from the old table's identity: per-key order is id order across the switch.
    _run(
        f"SELECT setval('{SEQUENCE}', greatest((SELECT max(id) FROM {PARENT}), "
        f"pg_sequence_last_value(pg_get_serial_sequence('{PARENT}', 'id')::regclass), 1))"
    )
    empty = not _run(f"SELECT 1 FROM {PARENT} LIMIT 1")
    if empty:
        _run(f"DROP TABLE {PARENT}")
        first_day = timezone.now().date()
    else:
        _run(f"ALTER TABLE {PARENT} ALTER COLUMN id DROP IDENTITY IF EXISTS")
        for (constraint,) in _run(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN ('p', 'u')", [PARENT]
        ):
            _run(f"ALTER TABLE {PARENT} DROP CONSTRAINT {constraint}")
        _run(f"ALTER TABLE {PARENT} ADD CONSTRAINT {LEGACY_PKEY} PRIMARY KEY USING INDEX {LEGACY_PKEY}")
        for name, _definition in indexes:
            _run(f"ALTER INDEX {name} RENAME TO {LEGACY}_{name.removeprefix('outbox_')}")
        _run(f"ALTER TABLE {PARENT} RENAME TO {LEGACY}")
        first_day = boundary.date()
    _run(f"ALTER TABLE {NEXT} RENAME TO {PARENT}")
    # Renames its index too.
    _run(f"ALTER TABLE {PARENT} RENAME CONSTRAINT {NEXT}_pkey TO {PARENT}_pkey")
    for name, _definition in [*indexes, (EVENT_ID_INDEX, "")]:
        _run(f"ALTER INDEX {name}_next RENAME TO {name}")
    _run(f"ALTER SEQUENCE {SEQUENCE} OWNED BY {PARENT}.id")
    if not empty:
        _run(f"ALTER TABLE {PARENT} ATTACH PARTITION {LEGACY} FOR VALUES FROM (MINVALUE) TO (%s)", [boundary])
        _run(f"ALTER TABLE {LEGACY} DROP CONSTRAINT {check}")
    day = first_day
    while day_start(day) <= ahead_until:
        partition_create(day=day)
        day += timedelta(days=1)
    _run(f"CREATE TABLE {DEFAULT} PARTITION OF {PARENT} DEFAULT")


def partition_upgrade(*, ahead_days: int = 3) -> bool:
    """Turn the plain outbox table into the partitioned one. Returns False if it already was."""
    if is_partitioned():
        return False
    now = timezone.now()
    # Steps 2's scans and index builds take as long as the table is big; they block nothing.
    _run("SET statement_timeout = 0")
    try:
        indexes = [(name, d) for name, d in _plain_indexes() if name != LEGACY_EVENT_ID]
        _make_twin(indexes)
        check, boundary = _range_check(now)
        _run(f"ALTER TABLE {PARENT} VALIDATE CONSTRAINT {check}")
        _index_concurrently(LEGACY_PKEY, f"UNIQUE INDEX {LEGACY_PKEY} ON {PARENT} (id, created_at)")
        _index_concurrently(LEGACY_EVENT_ID, f"INDEX {LEGACY_EVENT_ID} ON {PARENT} (event_id)")
        ahead_until = day_start(now.date() + timedelta(days=ahead_days))
        _locked(lambda: _swap(indexes, check, boundary, max(ahead_until, boundary)))
    finally:
        _run("RESET statement_timeout")
    logger.info("Outbox table partitioned by day of created_at")
    return True
