"""Scenario 9's parts: outbox days past retention in the chaos database, readers that hold
retention in the middle of its drops, and what must hold once the next run is done.

Retention (outbox/retention.py) drops a partition by locking the outbox's parent and then
detaching the partition: a session reading that partition (a staff query on an old day)
makes the DETACH wait, holding the parent, for up to OUTBOX_PARTITION_LOCK_TIMEOUT_MS;
the scenario kills the workers in that wait.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from devstack.chaos.stack import Stack
from devstack.deploy_smoke.processes import exec_in
from devstack.deploy_smoke.steps import SmokeFailed

TABLE = "outbox_outboxevent"
TOPIC = "chaos.retention"  # not an order topic: the run's checks and its watcher leave these rows alone
ROWS_PER_DAY = 200
# Days ago, all well past the 7 days of retention. Retention goes oldest first: it drops the
# first day, then waits on each held one in turn (lock_timeout each), then keeps the last two.
PUBLISHED_DAYS = (30, 29, 28, 27)
HELD_DAYS = (29, 28, 27)
DEAD_DAY, PENDING_DAY = 26, 25

# Each day's rows published that day, but the first row of the dead and the pending day: one
# dead row, and one pending row waiting for a retry a day away (no relay sends it meanwhile).
# Each row an order id of its own: the run's check for an event written twice groups by it.
_SEED = f"""
INSERT INTO {TABLE} (event_id, event_type, topic, key, payload, headers, status, attempts, next_attempt_at,
    last_error, created_at, published_at)
SELECT gen_random_uuid(), %(topic)s::text, %(topic)s::text, %(topic)s::text || '-' || %(day)s::int || '-' || n,
    jsonb_build_object('data', jsonb_build_object('order_id', gen_random_uuid())), '{{}}'::jsonb, s.status, 1,
    CASE WHEN s.status = 'pending' THEN now() + interval '1 day' ELSE t.at END, '', t.at,
    CASE WHEN s.status = 'published' THEN t.at END
FROM generate_series(1, %(rows)s) AS n
CROSS JOIN LATERAL (SELECT %(start)s::timestamptz + n * interval '1 minute' AS at) AS t
CROSS JOIN LATERAL (SELECT CASE WHEN n = 1 THEN %(first)s::text ELSE 'published' END AS status) AS s
"""

# The retention's DETACH, waiting for a lock (while its transaction holds the outbox's parent).
_DETACH_WAITING = """
SELECT count(*) FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE %DETACH PARTITION%'
"""

# Beat's hourly task, sent now: a worker runs it (outbox/tasks.py).
_SEND_RETENTION = "from outbox.tasks import retention_outbox; retention_outbox.delay()"


@dataclass(frozen=True)
class Days:
    today: dt.date

    def name(self, days_ago: int) -> str:
        return f"{TABLE}_p{self.today - dt.timedelta(days=days_ago):%Y%m%d}"

    def start(self, days_ago: int) -> dt.datetime:
        day = self.today - dt.timedelta(days=days_ago)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def days_seed(stack: Stack) -> Days:
    """A partition per day of PUBLISHED_DAYS, DEAD_DAY and PENDING_DAY, ROWS_PER_DAY rows each."""
    days = Days(dt.datetime.now(dt.UTC).date())
    firsts = {**dict.fromkeys(PUBLISHED_DAYS, "published"), DEAD_DAY: "dead", PENDING_DAY: "pending"}
    with stack.connect() as conn:
        for days_ago, first in firsts.items():
            start = days.start(days_ago)
            conn.execute(
                f"CREATE TABLE {days.name(days_ago)} PARTITION OF {TABLE} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + dt.timedelta(days=1)).isoformat()}')"
            )
            params = {"topic": TOPIC, "day": days_ago, "rows": ROWS_PER_DAY, "start": start, "first": first}
            conn.execute(_SEED, params)
    return days


def rows_remove(stack: Stack) -> None:
    """The seeded rows that stay (the kept days'): later scenarios start without them."""
    stack.sql(f"DELETE FROM {TABLE} WHERE topic = %s", [TOPIC])


@contextmanager
def partitions_held(stack: Stack, names: list[str]) -> Iterator[None]:
    """A transaction that has read each partition (ACCESS SHARE on it alone, not on the parent)."""
    with stack.connect(autocommit=False) as conn:
        for name in names:
            conn.execute(f"SELECT count(*) FROM {name}")
        try:
            yield
        finally:
            conn.rollback()


def retention_send(stack: Stack) -> None:
    """Queue the retention task, as beat does every hour (a manage.py shell in the web pod's env)."""
    web = stack.templates["web"]
    result = exec_in(web, stack.repo, ["python", "manage.py", "shell", "-c", _SEND_RETENTION], 120)
    if result.returncode != 0:
        raise SmokeFailed(f"sending the retention task exited {result.returncode}:\n{result.stderr[-2000:]}")


def detach_waiting(stack: Stack, *, present: bool, deadline: float) -> float | None:
    """Seconds until a retention DETACH is (present) or is no longer (not present) waiting for a
    lock; None if not within `deadline` seconds. Polled every 20 ms: each wait lasts lock_timeout."""
    began = time.monotonic()
    with stack.connect() as conn:
        while time.monotonic() - began < deadline:
            (waiting,) = conn.execute(_DETACH_WAITING).fetchone() or (0,)
            if bool(waiting) == present:
                return time.monotonic() - began
            time.sleep(0.02)
    return None


def partitions_present(stack: Stack, days: Days) -> set[int]:
    """Which seeded days still have their partition."""
    seeded = [*PUBLISHED_DAYS, DEAD_DAY, PENDING_DAY]
    names = {days.name(d): d for d in seeded}
    found = stack.sql("SELECT relname FROM pg_class WHERE relname = ANY(%s)", [list(names)])
    return {names[name] for (name,) in found}


def problems_after(stack: Stack, days: Days, *, deadline: float) -> list[str]:
    """Wait for the next run's drops; then every published-only day is gone, the dead and the
    pending day are there with all their rows."""
    began = time.monotonic()
    present = partitions_present(stack, days)
    while present & set(PUBLISHED_DAYS) and time.monotonic() - began < deadline:
        time.sleep(0.25)
        present = partitions_present(stack, days)
    problems = []
    if left := sorted(present & set(PUBLISHED_DAYS), reverse=True):
        problems.append(f"retention did not resume: days {left} ago not dropped after {deadline:.0f}s")
    if missing := {DEAD_DAY, PENDING_DAY} - present:
        problems.append(f"a partition holding a dead or pending row was dropped: days {sorted(missing)} ago")
    counts = dict(stack.sql(f"SELECT status, count(*) FROM {TABLE} WHERE topic = %s GROUP BY status", [TOPIC]))
    expected = {"dead": 1, "pending": 1, "published": 2 * (ROWS_PER_DAY - 1)}
    if counts != expected:
        problems.append(f"the kept days' rows changed: {counts}, expected {expected}")
    return problems
