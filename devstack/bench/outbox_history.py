"""The outbox's published history for the scale bench (`python -m devstack.bench scale`), by plain psycopg.

* `history_fill`: N published rows spread evenly over D whole UTC days ending at today's midnight,
  by INSERT ... SELECT generate_series into the parent table (a day at a time: a progress line each,
  and on a table partitioned by created_at each day's rows route to their partition). The rows
  are shaped like the service's: order.created / confirmed / shipped / cancelled in turn, their
  payload and headers as events_enqueue writes them (the relay bench's 200-byte messages would
  understate the bytes a row costs). published_at = created_at, so "published before the end of
  day d" is exactly day d's rows and older.
* `day_partitions_create`: on a partitioned outbox, one partition per simulated day (named
  outbox_outboxevent_pYYYYMMDD), unless a partition already covers it.
* `outbox_sizes`: table + index bytes over the whole partition tree (a plain table is a tree
  of one), live and dead tuples, rows by status.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

TABLE = "outbox_outboxevent"
TOPIC = "bench-history"
# The tables that hold the outbox's rows: the partitions, or the table itself when not partitioned.
# (pg_partition_tree gives nothing for a table that is not partitioned.)
TREE_TABLES = f"""
SELECT c.oid AS relid FROM pg_class AS c
WHERE c.relkind = 'r' AND (c.oid = '{TABLE}'::regclass OR c.oid IN (SELECT relid FROM pg_partition_tree('{TABLE}')))
"""

_FILL_SQL = f"""
INSERT INTO {TABLE} (event_id, event_type, topic, key, payload, headers, status, attempts,
    next_attempt_at, last_error, created_at, published_at)
SELECT e.event_id, e.event_type, %(topic)s, e.order_id::text,
    jsonb_build_object('event_id', e.event_id, 'event_type', e.event_type, 'timestamp', e.at, 'version', '1.0',
        'data', jsonb_build_object('order_id', e.order_id, 'user_id', 'user-' || (e.n %% 100000),
            'status', e.status, 'order_version', 1 + e.n %% 4) || e.data),
    jsonb_build_object('event_id', e.event_id, 'event_type', e.event_type,
        'traceparent', '00-' || md5(e.event_id::text) || '-' || left(md5(e.order_id::text), 16) || '-01'),
    'published', 1, e.at, '', e.at, e.at
FROM (
    SELECT n, gen_random_uuid() AS event_id, md5((n / 4)::text)::uuid AS order_id,
        %(start)s::timestamptz + make_interval(secs => n::bigint * %(step)s::bigint / 1e6) AS at,
        (ARRAY['order.created', 'order.confirmed', 'order.shipped', 'order.cancelled'])[1 + n %% 4] AS event_type,
        (ARRAY['pending', 'confirmed', 'shipped', 'cancelled'])[1 + n %% 4] AS status,
        CASE n %% 4
            WHEN 0 THEN jsonb_build_object('total_amount', '99.98', 'currency', 'USD', 'shipping_address',
                '1 Bench Street', 'items', jsonb_build_array(jsonb_build_object('product_id', 'prod1',
                'quantity', 2, 'price', '49.99')), 'created_at', %(start)s)
            WHEN 1 THEN jsonb_build_object('payment_id', 'pay-' || n, 'total_amount', '99.98',
                'currency', 'USD', 'confirmed_at', %(start)s)
            WHEN 2 THEN jsonb_build_object('tracking_number', 'TRK' || n, 'carrier', 'bench-post',
                'shipped_at', %(start)s)
            ELSE jsonb_build_object('reason', 'customer request', 'cancelled_at', %(start)s)
        END AS data
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n
) AS e
ORDER BY e.n
"""


def first_day(days: int, *, today: dt.date | None = None) -> dt.date:
    """The first simulated day: `days` whole UTC days end at today's midnight."""
    return (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=days)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def is_partitioned(conn: psycopg.Connection[Any]) -> bool:
    found = conn.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass", [TABLE]).fetchone()
    return found is not None


def day_partitions_create(conn: psycopg.Connection[Any], first: dt.date, days: int) -> list[str]:
    """One partition per day from `first` to tomorrow, where no partition covers that day yet."""
    made = []
    for offset in range(days + 2):
        day = first + dt.timedelta(days=offset)
        name = f"{TABLE}_p{day:%Y%m%d}"
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                        sql.Identifier(name),
                        sql.Identifier(TABLE),
                        sql.Literal(_midnight(day)),
                        sql.Literal(_midnight(day + dt.timedelta(days=1))),
                    )
                )
            made.append(name)
        except (psycopg.errors.DuplicateTable, psycopg.errors.InvalidObjectDefinition):
            pass  # the migration or the partition job made it (or one that overlaps it)
    return made


def history_fill(dsn: str, *, rows: int, days: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """`rows` published rows over `days` days ending at today's midnight; returns the fill's figures."""
    first = first_day(days)
    step_us = days * 86_400 * 10**6 // max(rows, 1)  # microseconds between two rows
    per_day = -(-rows // days)
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        partitioned = is_partitioned(conn)
        made = day_partitions_create(conn, first, days) if partitioned else []
        for day in range(days):
            lo, hi = day * per_day, min(rows, (day + 1) * per_day) - 1
            if lo > hi:
                break
            began = time.monotonic()
            conn.execute(
                _FILL_SQL,
                {
                    "topic": TOPIC,
                    "start": _midnight(first).isoformat(),
                    "step": step_us,
                    "first": lo,
                    "last": hi,
                },
            )
            done = time.monotonic() - began
            progress(f"fill day {day + 1}/{days}: {hi - lo + 1:,} rows in {done:.1f} s ({(hi - lo + 1) / done:,.0f}/s)")
        seconds = time.monotonic() - started
        sizes = outbox_sizes(conn)
    return {
        "rows": rows,
        "days": days,
        "first_day": first.isoformat(),
        "partitioned": partitioned,
        "partitions_made": len(made),
        "fill_seconds": round(seconds, 1),
        "rows_per_second": round(rows / seconds) if seconds else 0,
        "after_fill": sizes,
    }


def outbox_sizes(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Bytes (heap + TOAST + indexes) over the partition tree, tuples live and dead, rows by status."""
    conn.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts, before they are read
    tree = TREE_TABLES
    total, heap, indexes = conn.execute(
        f"SELECT sum(pg_total_relation_size(relid)), sum(pg_table_size(relid)), sum(pg_indexes_size(relid)) "
        f"FROM ({tree}) AS t"
    ).fetchone() or (0, 0, 0)
    live, dead, partitions = conn.execute(
        f"SELECT coalesce(sum(n_live_tup), 0), coalesce(sum(n_dead_tup), 0), count(*) "
        f"FROM pg_stat_user_tables WHERE relid IN ({tree})"
    ).fetchone() or (0, 0, 0)
    by_status = dict(conn.execute(f"SELECT status, count(*) FROM {TABLE} GROUP BY status").fetchall())
    return {
        "total_bytes": int(total or 0),
        "heap_bytes": int(heap or 0),
        "index_bytes": int(indexes or 0),
        "live_tuples": int(live),
        "dead_tuples": int(dead),
        "tables": int(partitions),
        "rows": {str(status): int(count) for status, count in by_status.items()},
    }
