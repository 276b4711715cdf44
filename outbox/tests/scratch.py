"""A scratch table of the outbox's partitioned shape, for tests that must not depend on
the outbox's own migration: a day per partition, a legacy one below them, a DEFAULT."""

import datetime as dt

from django.db import connection

PAGE = 8192  # PostgreSQL's block size: a heap or index with a row in it holds at least one
NOW = dt.datetime(2026, 12, 7, 14, 30, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)
SCRATCH = "outbox_scratch"


def execute(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def day(days_ago: int) -> str:
    return (NOW - dt.timedelta(days=days_ago)).strftime("%Y%m%d")


def bound(days_ago: int) -> str:
    return f"'{(NOW - dt.timedelta(days=days_ago)).date().isoformat()} 00:00:00+00'"


def partitioned_scratch() -> None:
    """Partitions 10, 8, 7 days ago and today (NOW), legacy (MINVALUE to 10 days ago), DEFAULT."""
    execute(
        f"CREATE TABLE {SCRATCH} (id bigint NOT NULL, status varchar(16) NOT NULL, created_at timestamptz NOT NULL)"
        " PARTITION BY RANGE (created_at)",
        f"CREATE INDEX {SCRATCH}_status ON {SCRATCH} (status)",
        f"CREATE TABLE {SCRATCH}_legacy PARTITION OF {SCRATCH} FOR VALUES FROM (MINVALUE) TO ({bound(10)})",
        *(
            f"CREATE TABLE {SCRATCH}_p{day(days_ago)} PARTITION OF {SCRATCH}"
            f" FOR VALUES FROM ({bound(days_ago)}) TO ({bound(days_ago - 1)})"
            for days_ago in (10, 8, 7, 0)
        ),
        f"CREATE TABLE {SCRATCH}_pdefault PARTITION OF {SCRATCH} DEFAULT",
    )
