"""The faults. Each scenario runs load, breaks something, ends the fault, and returns when it ended.

`quick` shortens a scenario for CI; run.py then waits until the service has
caught up and checks the invariants.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from devstack.chaos import checks, retention
from devstack.chaos.load import ApiStats, UserEvents, Watch, api_load
from devstack.chaos.stack import Stack


@dataclass
class Ctx:
    stack: Stack
    events: UserEvents
    watch: Watch
    users: list[str]
    quick: bool
    crashes: list[str] = field(default_factory=list)

    def fault_over(self) -> checks.RecoveryClock:
        """The fault has ended: start timing the recovery (the load may go on)."""
        return checks.RecoveryClock(self.stack, self.events, self.watch)


@dataclass
class Outcome:
    clock: checks.RecoveryClock
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _load(ctx: Ctx, stats: ApiStats, seconds: float, clients: int = 4, pause: float = 0.05) -> Callable[[], None]:
    """Start API load; returns a function that stops it and waits for the clients."""
    stop = threading.Event()
    threads = api_load(ctx.stack, stats, ctx.users, clients=clients, seconds=seconds, pause=pause, stop=stop)
    # stop also ends a client's retries: a create left unanswered is counted as given up

    def finish() -> None:
        stop.set()
        for thread in threads:
            thread.join(90)

    return finish


def _pending(ctx: Ctx) -> int:
    return int(ctx.stack.sql("SELECT count(*) FROM outbox_outboxevent WHERE status = 'pending'")[0][0])


def relay_kill(ctx: Ctx, stats: ApiStats) -> Outcome:
    """1: kill -9 of a worker while the relay has a backlog, again and again; restarted like a pod."""
    rounds = 2 if ctx.quick else 4
    finish = _load(ctx, stats, 120, clients=6, pause=0)
    mid_batch = 0
    try:
        for _ in range(rounds):
            time.sleep(random.uniform(1.5, 3.0))
            if _pending(ctx):
                mid_batch += 1
            pod = random.choice(ctx.stack.pods["worker"])
            ctx.stack.kill9(pod)
            time.sleep(1)
            ctx.stack.restart(pod)
        clock = ctx.fault_over()
        time.sleep(3)
    finally:
        finish()
    return Outcome(clock, notes=[f"{rounds} kills, {mid_batch} with a backlog pending"])


def kafka_cut(ctx: Ctx, stats: ApiStats) -> Outcome:
    """2: the service cannot reach Kafka for 30 s (TCP proxy cut; the broker keeps its data)."""
    seconds = 10 if ctx.quick else 30
    finish = _load(ctx, stats, seconds + 5, clients=3, pause=0.1)
    try:
        time.sleep(2)
        assert ctx.stack.proxy is not None
        ctx.stack.proxy.cut()
        time.sleep(seconds)
        ctx.stack.proxy.restore()
        clock = ctx.fault_over()
    finally:
        finish()
    return Outcome(clock, notes=[f"Kafka cut {seconds}s"])


def postgres_faults(ctx: Ctx, stats: ApiStats) -> Outcome:
    """3: pg_terminate_backend of the service's sessions under load, then PostgreSQL restarted."""
    finish = _load(ctx, stats, 60, clients=4, pause=0.05)
    assert ctx.stack.addresses is not None
    terminated = 0
    try:
        for _ in range(3):
            time.sleep(2)
            rows = ctx.stack.sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [ctx.stack.addresses.database],
            )
            terminated += int(rows[0][0])
        time.sleep(2)
        began = time.monotonic()
        ctx.stack.postgres_restart()
        down = time.monotonic() - began
        clock = ctx.fault_over()
        time.sleep(5)
    finally:
        finish()
    return Outcome(clock, notes=[f"{terminated} sessions terminated, restart took {down:.1f}s"])


def redis_restart(ctx: Ctx, stats: ApiStats) -> Outcome:
    """4: Valkey restarted under consumer and API load: 503 + Retry-After, never 500."""
    finish = _load(ctx, stats, 40, clients=4, pause=0.05)
    try:
        ctx.events.burst(ctx.users, 300)
        time.sleep(2)
        ctx.stack.valkey_restart(down_seconds=3)
        clock = ctx.fault_over()
        ctx.events.burst(ctx.users, 300)
        time.sleep(5)
    finally:
        finish()
    problems = []
    if stats.status[503] == 0:
        problems.append("no 503 while Redis was down (was the outage noticed?)")
    return Outcome(clock, problems, notes=[f"503s {stats.status[503]}"])


def consumer_kill(ctx: Ctx, stats: ApiStats) -> Outcome:
    """5: kill -9 of the consumer mid-batch; a poison message in the middle of a burst."""
    finish = _load(ctx, stats, 30, clients=2, pause=0.1)
    size = 1000 if ctx.quick else 3000
    try:
        ctx.events.burst(ctx.users, size, poison_at=size // 2)
        time.sleep(0.5)
        pod = ctx.stack.pods["consumer"][0]
        ctx.stack.kill9(pod)
        time.sleep(1)
        ctx.stack.restart(pod)
        ctx.events.burst(ctx.users, size, poison_at=size // 2)
        clock = ctx.fault_over()
    finally:
        finish()
    return Outcome(clock, notes=[f"2 bursts of {size} with a poison message each, 1 kill"])


def two_beats(ctx: Ctx, stats: ApiStats) -> Outcome:
    """6: a second beat started by mistake: nothing may happen twice."""
    seconds = 10 if ctx.quick else 45
    finish = _load(ctx, stats, seconds, clients=4, pause=0.05)
    try:
        extra = ctx.stack.add_pod("beat")
        ctx.stack.wait_ready(extra)
        time.sleep(seconds)
        ctx.stack.terminate(extra)
        ctx.stack.remove(extra)
        clock = ctx.fault_over()
    finally:
        finish()
    return Outcome(clock, notes=[f"two beats for {seconds}s"])


def many_clients(ctx: Ctx, stats: ApiStats) -> Outcome:
    """7: 256 concurrent clients for 60 s: no error, no stall, nothing idle in transaction, memory flat."""
    seconds = 60
    rss_before = ctx.stack.rss_mb("web")
    finish = _load(ctx, stats, seconds, clients=256, pause=0)
    samples = []
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        time.sleep(5)
        samples.append(ctx.stack.rss_mb("web"))
    clock = ctx.fault_over()
    finish()
    idle = checks.idle_in_transaction(ctx.stack)
    problems = []
    errors = stats.server_errors + stats.connection_errors + stats.status[429]
    if errors:
        problems.append(f"{errors} errors")
    longest = max(stats.gaps, default=0.0)
    if longest > 1.0:
        problems.append(f"stall: no response for {longest:.1f}s")
    if idle:
        problems.append(f"{idle} sessions idle in transaction")
    # Flat: the second half of the run grows the web pods by less than 10 % (warm-up excluded).
    half = samples[len(samples) // 2] if samples else rss_before
    if samples and samples[-1] > half * 1.10:
        problems.append(f"memory grew {half:.0f} -> {samples[-1]:.0f} MB in the second half")
    latencies = sorted(stats.latencies) or [0.0]
    p99 = latencies[int(len(latencies) * 0.99) - 1 if len(latencies) > 1 else 0]
    notes = [
        f"{stats.requests / seconds:.0f} req/s, p99 {p99:.2f}s, longest gap {longest:.2f}s",
        f"web RSS {rss_before:.0f} -> {max(samples, default=0):.0f} -> {samples[-1] if samples else 0:.0f} MB",
        f"idle in transaction {idle}",
    ]
    return Outcome(clock, problems, notes)


def sigterm_all(ctx: Ctx, stats: ApiStats) -> Outcome:
    """8: SIGTERM (after preStop) to one pod of every kind under load; each exits within its grace."""
    finish = _load(ctx, stats, 120, clients=4, pause=0.05)
    problems: list[str] = []
    took: list[str] = []
    try:
        ctx.events.burst(ctx.users, 500)
        for component in ("worker", "consumer", "beat", "web"):
            pod = ctx.stack.pods[component][0]
            began = time.monotonic()
            problem = ctx.stack.terminate(pod)
            took.append(f"{component} {time.monotonic() - began:.1f}s")
            if problem:
                problems.append(f"{component}: {problem}")
            ctx.stack.restart(pod)
            if component == "worker":
                ctx.events.burst(ctx.users, 500)
        clock = ctx.fault_over()
    finally:
        finish()
    return Outcome(clock, problems, notes=["stopped in " + ", ".join(took)])


def retention_kill(ctx: Ctx, stats: ApiStats) -> Outcome:
    """9: kill -9 of every worker (the relays, and the retention run in one of them) while retention
    waits, holding the outbox's parent, to detach a partition; the next run drops what is left, and
    never a partition that holds a pending or dead row."""
    days = retention.days_seed(ctx.stack)
    workers = list(ctx.stack.pods["worker"])
    finish = _load(ctx, stats, 60, clients=4, pause=0.05)
    problems: list[str] = []
    try:
        with retention.partitions_held(ctx.stack, [days.name(d) for d in retention.HELD_DAYS]):
            retention.retention_send(ctx.stack)
            waited = retention.detach_waiting(ctx.stack, present=True, deadline=30)
            for pod in workers:
                ctx.stack.kill9(pod)
            # The killed run's backend waits on until its lock_timeout: how long it still held the outbox.
            lingered = retention.detach_waiting(ctx.stack, present=False, deadline=30)
        gone = sorted(set(retention.PUBLISHED_DAYS) - retention.partitions_present(ctx.stack, days), reverse=True)
        for pod in workers:
            ctx.stack.restart(pod, wait=False)
        retention.retention_send(ctx.stack)  # the next run (beat's next hour), queued for the restarted workers
        for pod in workers:
            ctx.stack.wait_ready(pod)
        clock = ctx.fault_over()
        problems += retention.problems_after(ctx.stack, days, deadline=60)
    finally:
        finish()
        retention.rows_remove(ctx.stack)
    if waited is None:
        problems.append("retention never waited to detach a held partition: the kill missed it")
    if lingered is None:
        problems.append("the killed run's DETACH still waited 30 s after the kill")
    notes = [
        f"workers killed while retention waited to detach (days {gone} ago dropped by then)",
        f"the killed run's lock wait ended {lingered or 0:.2f}s after the kill",
    ]
    return Outcome(clock, problems, notes)


SCENARIOS: dict[int, tuple[str, Callable[[Ctx, ApiStats], Outcome], bool]] = {
    # number: (title, function, part of --quick)
    1: ("kill -9 relay worker", relay_kill, True),
    2: ("Kafka cut", kafka_cut, True),
    3: ("PostgreSQL sessions killed + restart", postgres_faults, True),
    4: ("Valkey restart", redis_restart, True),
    5: ("kill -9 consumer + poison", consumer_kill, True),
    6: ("two beats", two_beats, True),
    7: ("256 clients x 60s", many_clients, False),
    8: ("SIGTERM every kind", sigterm_all, False),
    9: ("kill -9 of the workers during retention", retention_kill, True),
}
