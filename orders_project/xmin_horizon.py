"""The oldest transaction horizon: how far back the sessions of this database hold vacuum.

VACUUM may remove a dead row version only once no session can still see it: the
oldest snapshot (`backend_xmin`) or transaction id (`backend_xid`) of any session on
the database bounds what it may remove. One transaction left open (idle in
transaction, a long report, a forgotten psql) keeps every dead tuple written since it
began, in the outbox and everywhere else, and the tables and their indexes grow.

Read from pg_stat_activity (one catalog view, no table rows). Counted: the sessions on
this database and the walsenders (a standby with hot_standby_feedback holds the
horizon through its walsender), except the session asking and autovacuum workers
(vacuum's own snapshot does not hold the horizon). Not counted: replication slots and
prepared transactions, which hold it too (pg_replication_slots, pg_prepared_xacts).
`xact_start` of another role's session is visible only to a role with
pg_read_all_stats: without it, such a session counts in the transaction age only.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from prometheus_client.core import GaugeMetricFamily, Metric

from orders_project.metrics import CachedQueryCollector

_HOLDERS = """
    FROM pg_stat_activity
    WHERE (datname = current_database() OR backend_type = 'walsender')
      AND backend_type <> 'autovacuum worker'
      AND pid <> pg_backend_pid()
      AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)
"""
# greatest() skips NULLs: a session's age is that of the older of its snapshot and its xid.
_XID_AGE = "greatest(age(backend_xmin), age(backend_xid))"


@dataclass(frozen=True)
class XminHorizon:
    age_transactions: int  # transaction ids consumed since the oldest held one; 0 when none is held
    age_seconds: float  # since the oldest holding transaction began; 0 when none is held (or visible)


@dataclass(frozen=True)
class HorizonHolder:
    pid: int
    application_name: str
    backend_type: str
    state: str | None  # None when the role may not see it
    xact_start: datetime | None  # None when the role may not see it (or a walsender)
    age_transactions: int


def xmin_horizon() -> XminHorizon:
    """The horizon's age in transactions and in seconds: one aggregate over pg_stat_activity."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT coalesce(max({_XID_AGE}), 0),"
            f" coalesce(extract(epoch FROM max(clock_timestamp() - xact_start)), 0) {_HOLDERS}"
        )
        transactions, seconds = cursor.fetchone() or (0, 0)
    return XminHorizon(age_transactions=int(transactions), age_seconds=max(float(seconds), 0.0))


def xmin_horizon_holders(*, limit: int = 5) -> list[HorizonHolder]:
    """The sessions holding the horizon furthest back, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pid, application_name, backend_type, state, xact_start, {_XID_AGE} AS xid_age {_HOLDERS}"
            " ORDER BY xid_age DESC, xact_start NULLS LAST, pid LIMIT %s",
            [limit],
        )
        return [
            HorizonHolder(
                pid=pid,
                application_name=application_name or "",
                backend_type=backend_type or "",
                state=state,
                xact_start=xact_start,
                age_transactions=int(xid_age),
            )
            for pid, application_name, backend_type, state, xact_start, xid_age in cursor.fetchall()
        ]


_AGE_SECONDS = (
    "postgres_xmin_horizon_age_seconds",
    "Since the oldest transaction holding back vacuum's horizon on the database began (0 when none)",
)
_AGE_TRANSACTIONS = (
    "postgres_xmin_horizon_age_transactions",
    "Transaction ids consumed since the oldest snapshot or xid any session on the database holds (0 when none)",
)


def _describe() -> list[Metric]:
    return [GaugeMetricFamily(*_AGE_SECONDS), GaugeMetricFamily(*_AGE_TRANSACTIONS)]


def _compute() -> list[Metric]:
    horizon = xmin_horizon()
    return [
        GaugeMetricFamily(*_AGE_SECONDS, value=horizon.age_seconds),
        GaugeMetricFamily(*_AGE_TRANSACTIONS, value=horizon.age_transactions),
    ]


def xmin_horizon_collector(**options: Any) -> CachedQueryCollector:
    """The horizon gauges, cached (options: max_age, clock; see CachedQueryCollector)."""
    return CachedQueryCollector(_compute, describe=_describe, **options)
