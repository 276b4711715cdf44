"""What the outbox occupies on disk, read from PostgreSQL's catalogs and statistics only.

Works on the plain table and on the table range-partitioned by `created_at` alike:
a plain table is read as its own single leaf, so sizes and dead tuples are
summed over the leaves either way, and the partition figures are empty for
a plain table. A partition's range comes from its bound (pg_get_expr(relpartbound)),
never from its rows: no statement here reads a row of the outbox, except the bounded
look into the DEFAULT partition (which should hold none).

"Past retention": a partition whose upper bound is at or before now minus the
retention. Retention drops such a partition unless it holds a pending or dead row (or
a row published late, until that row is past retention too), so one that stays there
for longer than retention's interval is one it cannot drop.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from outbox.models import OutboxEvent

# The DEFAULT partition is counted up to this many rows: it should hold none, and a
# count that stops here costs at most this many tuples however full it got.
DEFAULT_ROWS_COUNTED = 1000

# The bound of a range partition reads FOR VALUES FROM ('2026-12-01 00:00:00+00') TO (...),
# in the session's DateStyle and TimeZone, so it is cast back to timestamptz in the same
# statement; MINVALUE/MAXVALUE match neither pattern and give NULL.
_LEAVES = """
WITH root AS (SELECT to_regclass(%s) AS oid),
tree AS (
    SELECT t.relid, t.level, t.isleaf FROM root, pg_partition_tree(root.oid) AS t
    UNION ALL  -- pg_partition_tree() lists nothing for a plain table: it is its own leaf
    SELECT c.oid, 0, true FROM root JOIN pg_class AS c ON c.oid = root.oid
    WHERE c.relkind = 'r' AND NOT c.relispartition
)
SELECT c.relname,
       t.level,
       c.relkind,
       t.isleaf,
       pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT',
       substring(pg_get_expr(c.relpartbound, c.oid) FROM $$FROM \\('([^']*)'\\)$$)::timestamptz,
       substring(pg_get_expr(c.relpartbound, c.oid) FROM $$TO \\('([^']*)'\\)$$)::timestamptz,
       pg_table_size(c.oid),
       pg_indexes_size(c.oid),
       coalesce(s.n_dead_tup, 0)
FROM tree AS t
JOIN pg_class AS c ON c.oid = t.relid
LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
ORDER BY t.level, c.relname
"""


@dataclass(frozen=True)
class OutboxPartition:
    name: str
    lower: datetime | None  # None for MINVALUE (an attached legacy table) and for DEFAULT
    upper: datetime | None  # None for MAXVALUE and for DEFAULT
    is_default: bool
    table_bytes: int  # heap and TOAST
    index_bytes: int
    dead_tuples: int  # as the statistics last counted them

    @property
    def start(self) -> datetime | None:
        """The oldest moment it is known to cover: its lower bound, else (MINVALUE) its upper one."""
        return self.lower or self.upper


@dataclass(frozen=True)
class OutboxStorage:
    partitioned: bool
    table_bytes: int  # every leaf's heap and TOAST
    index_bytes: int  # every leaf's indexes
    dead_tuples: int
    partitions: list[OutboxPartition]  # leaves of a partitioned table; empty for a plain one
    past_retention: list[OutboxPartition]  # upper bound at or before the retention cutoff
    default_rows: int  # rows in the DEFAULT partition, counted up to DEFAULT_ROWS_COUNTED + 1

    @property
    def oldest_partition_start(self) -> datetime | None:
        starts = [p.start for p in self.partitions if p.start is not None]
        return min(starts, default=None)


def outbox_storage(*, now: datetime, retention: timedelta, table: str | None = None) -> OutboxStorage:
    """Sizes, dead tuples and partitions of `table` (default: the outbox's), as of `now`.

    One catalog statement, plus one bounded count when there is a DEFAULT partition.
    A table that does not exist reads as an empty plain one.
    """
    table = table or OutboxEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(_LEAVES, [connection.ops.quote_name(table)])
        rows = cursor.fetchall()
    root = rows[0] if rows else None
    partitioned = root is not None and root[2] == "p"
    leaves = [
        OutboxPartition(
            name=name,
            lower=lower,
            upper=upper,
            is_default=bool(is_default),
            table_bytes=table_bytes,
            index_bytes=index_bytes,
            dead_tuples=dead,
        )
        for name, _level, _kind, is_leaf, is_default, lower, upper, table_bytes, index_bytes, dead in rows
        if is_leaf
    ]
    partitions = leaves if partitioned else []
    cutoff = now - retention
    default = next((p for p in partitions if p.is_default), None)
    return OutboxStorage(
        partitioned=partitioned,
        table_bytes=sum(p.table_bytes for p in leaves),
        index_bytes=sum(p.index_bytes for p in leaves),
        dead_tuples=sum(p.dead_tuples for p in leaves),
        partitions=partitions,
        past_retention=[p for p in partitions if p.upper is not None and p.upper <= cutoff],
        default_rows=_rows_bounded(default.name) if default else 0,
    )


def _rows_bounded(partition: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM ONLY {connection.ops.quote_name(partition)} LIMIT %s) AS rows",
            [DEFAULT_ROWS_COUNTED + 1],
        )
        (count,) = cursor.fetchone() or (0,)
    return int(count)
