"""python -m devstack.bench retention --day YYYY-MM-DD --baseline-day YYYY-MM-DD [--batch-size N].

Retention of one simulated day's published rows (devstack.bench.outbox_history wrote them),
twice on the same table, each on a day of its own with as many rows:
1. the service's retention on --day: outbox.services.outbox_retention_run(now=...)
   (partitions dropped whole);
2. the baseline on --baseline-day: the batched DELETE the service used before the outbox was
   partitioned, as plain SQL (the ids of up to --batch-size published rows older than the
   cutoff, by id; then a DELETE of those ids), until nothing is left.
The clock is the end of the day plus OUTBOX_RETENTION_DAYS, so the cutoff is that day's end:
exactly that day is past retention (the other day is still within).
Each starts after a VACUUM and a CHECKPOINT (both pay the full-page images a page's first
change after one writes) and gives seconds, WAL bytes (pg_current_wal_insert_lsn before and after: the
bench's server commits asynchronously, so pg_current_wal_lsn, the position written out, lags), the rows
DELETEd (n_tup_del over the partition tree: a dropped partition counts none), the day's rows
left, table + index bytes and dead tuples before and after; then the VACUUM the table needs
afterwards, timed with its WAL. Last line: `figures: {json}`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection

from devstack.bench import bench_parser
from devstack.bench.outbox_history import TABLE, TREE_TABLES, outbox_sizes
from outbox.services import outbox_retention_run

# The old cleanup's batch: at most this many rows per DELETE, picked by id.
DELETE_BATCH_SIZE = 1000


def _parser() -> Any:
    parser = bench_parser("retention", __doc__)
    parser.add_argument("--day", type=dt.date.fromisoformat, required=True, help="the service's retention's day")
    parser.add_argument("--baseline-day", type=dt.date.fromisoformat, required=True, help="the DELETE's day")
    parser.add_argument("--batch-size", type=int, default=DELETE_BATCH_SIZE)
    return parser


def main(argv: list[str]) -> None:
    options = _parser().parse_args(argv)
    kind, run = _service_retention()
    figures = {
        "retention": _measure(kind, options.day, run),
        "baseline": _measure(
            "batched DELETE (cleanup_published's statements)",
            options.baseline_day,
            lambda clock: _batched_delete(clock, options.batch_size),
        ),
    }
    print(f"figures: {json.dumps(figures)}", flush=True)


def _end(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(days=1)


def _service_retention() -> tuple[str, Callable[[dt.datetime], None]]:
    """The service's retention, on a clock the bench sets."""

    def run(clock: dt.datetime) -> None:
        # A second past the day's end: a partition whose range ends at the cutoff is surely past it.
        outbox_retention_run(now=clock + dt.timedelta(seconds=1))

    return "outbox_retention_run", run


def _batched_delete(clock: dt.datetime, batch_size: int) -> None:
    """The old cleanup's statements, each also bounded to the day's created_at range: on the
    partitioned table, ORDER BY id over every partition took ~2 s a batch at 10,000,000 rows
    (a merge of every partition's index), which is not what those statements cost on the plain
    table they were written for; bounded, they touch the day's partition alone, as they
    touched the day's rows alone in the plain table's published_at index."""
    cutoff = clock - dt.timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    day = [cutoff - dt.timedelta(days=1), cutoff]
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                f"SELECT id FROM {TABLE} WHERE status = 'published' AND published_at < %s"
                " AND created_at >= %s AND created_at < %s ORDER BY id LIMIT %s",
                [cutoff, *day, batch_size],
            )
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return
            cursor.execute(
                f"DELETE FROM {TABLE} WHERE id = ANY(%s) AND status = 'published'"
                " AND created_at >= %s AND created_at < %s",
                [ids, *day],
            )


def _lsn() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()")
        return str(cursor.fetchone()[0])


def _wal_since(lsn: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [lsn])
        return int(cursor.fetchone()[0])


def _scalar(statement: str, params: list[Any] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return int(cursor.fetchone()[0] or 0)


def _deletes_by_table() -> dict[int, int]:
    """n_tup_del of each table of the partition tree as it is now (a dropped partition is gone)."""
    _scalar("SELECT 1 FROM pg_stat_force_next_flush()")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT relid::int, n_tup_del FROM pg_stat_user_tables WHERE relid IN ({TREE_TABLES})")
        return dict(cursor.fetchall())


def _sizes() -> dict[str, Any]:
    connection.ensure_connection()
    return outbox_sizes(connection.connection)


def _measure(kind: str, day: dt.date, run: Callable[[dt.datetime], None]) -> dict[str, Any]:
    start, end = _end(day) - dt.timedelta(days=1), _end(day)
    clock = end + dt.timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    in_day = f"SELECT count(*) FROM {TABLE} WHERE created_at >= %s AND created_at < %s"
    day_rows = _scalar(in_day, [start, end])
    with connection.cursor() as cursor:
        # From the same state for both: nothing left for vacuum but what this run leaves.
        cursor.execute(f"VACUUM {TABLE}")
        cursor.execute("CHECKPOINT")
    before = _sizes()
    deletes, lsn = _deletes_by_table(), _lsn()
    began = time.monotonic()
    run(clock)
    seconds = time.monotonic() - began
    wal = _wal_since(lsn)
    deleted = sum(count - deletes.get(relid, 0) for relid, count in _deletes_by_table().items())
    after = _sizes()
    lsn, began = _lsn(), time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {TABLE}")
    vacuum = {"seconds": round(time.monotonic() - began, 2), "wal_bytes": _wal_since(lsn)}
    return {
        "kind": kind,
        "day": day.isoformat(),
        "day_rows": day_rows,
        "day_rows_left": _scalar(in_day, [start, end]),
        "seconds": round(seconds, 2),
        "wal_bytes": wal,
        "rows_deleted": deleted,
        "before": before,
        "after": after,
        "vacuum_after": vacuum,
        "after_vacuum": _sizes(),
    }
