"""Scratch tables of the outbox's two shapes, for tests that must not depend on which
one the outbox's own migrations left: plain, or range-partitioned by day of created_at
(a day per partition, a legacy one below them, a DEFAULT)."""

import datetime as dt

from django.db import connection

PAGE = 8192  # PostgreSQL's block size: a heap or index with a row in it holds at least one
NOW = dt.datetime(2026, 12, 7, 14, 30, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)
SCRATCH = "outbox_scratch"
_COLUMNS = "(id bigint NOT NULL, status varchar(16) NOT NULL, created_at timestamptz NOT NULL)"


def execute(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def day(days_ago: int, *, now: dt.datetime = NOW) -> str:
    return (now - dt.timedelta(days=days_ago)).strftime("%Y%m%d")


def bound(days_ago: int, *, now: dt.datetime = NOW) -> str:
    return f"'{(now - dt.timedelta(days=days_ago)).date().isoformat()} 00:00:00+00'"


def plain_scratch() -> None:
    """One plain table with one index."""
    execute(f"CREATE TABLE {SCRATCH} {_COLUMNS}", f"CREATE INDEX {SCRATCH}_status ON {SCRATCH} (status)")


def partitioned_scratch(*, now: dt.datetime = NOW) -> None:
    """Partitions 10, 8, 7 days before `now` and `now`'s day, legacy (MINVALUE to 10 days before), DEFAULT."""
    execute(
        f"CREATE TABLE {SCRATCH} {_COLUMNS} PARTITION BY RANGE (created_at)",
        f"CREATE INDEX {SCRATCH}_status ON {SCRATCH} (status)",
        f"CREATE TABLE {SCRATCH}_legacy PARTITION OF {SCRATCH} FOR VALUES FROM (MINVALUE) TO ({bound(10, now=now)})",
        *(
            f"CREATE TABLE {SCRATCH}_p{day(days_ago, now=now)} PARTITION OF {SCRATCH}"
            f" FOR VALUES FROM ({bound(days_ago, now=now)}) TO ({bound(days_ago - 1, now=now)})"
            for days_ago in (10, 8, 7, 0)
        ),
        f"CREATE TABLE {SCRATCH}_pdefault PARTITION OF {SCRATCH} DEFAULT",
    )
