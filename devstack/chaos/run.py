"""`python -m devstack chaos`: start the service, run the scenarios, check the invariants, say so."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from devstack.chaos import checks
from devstack.chaos.load import USERS, ApiStats, UserEvents, Watch, watch_orders
from devstack.chaos.scenarios import SCENARIOS, Ctx
from devstack.chaos.stack import Stack, say
from devstack.deploy_smoke.steps import SmokeFailed
from devstack.procs import log_tail

# The whole run stops by itself within about 15 minutes.
TOTAL_DEADLINE = 14 * 60.0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _statuses(stats: ApiStats) -> str:
    return " ".join(f"{code}:{n}" for code, n in sorted(stats.status.items()))


def _p50(stats: ApiStats) -> float:
    latencies = sorted(stats.latencies)
    return latencies[len(latencies) // 2] if latencies else 0.0


def _line(
    number: int,
    title: str,
    stats: ApiStats,
    before: checks.Figures,
    figures: checks.Figures,
    watch: Watch,
    dups_before: int,
    recovered: float | None,
    problems: list[str],
    notes: list[str],
) -> str:
    effects = figures.duplicate_orders + figures.duplicate_transitions + figures.replica_wrong
    verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    recover = f"{recovered:.1f}s" if recovered is not None else "NOT RECOVERED"
    return (
        f"[{number}] {title}: orders created {stats.created} (cancelled {stats.cancelled}), "
        f"events expected {figures.expected} (+{figures.expected - before.expected}), "
        f"delivered {figures.delivered}, lost {figures.lost}, wire duplicates {watch.wire_duplicates - dups_before}, "
        f"duplicate effects {effects}, order violations {watch.order_violations}, "
        f"5xx {stats.server_errors} (500s {stats.errors_500}), recovered in {recover} "
        f"| {stats.requests} requests ({_statuses(stats)}), {stats.given_up} given up, "
        f"p50 {_p50(stats):.3f}s, {', '.join(notes)} | {verdict}"
    )


def scenario(ctx: Ctx, number: int) -> tuple[str, bool]:
    title, function, _ = SCENARIOS[number]
    stats = ApiStats()
    before = checks.measure(ctx.stack, stats, ctx.events, ctx.watch)
    ctx.crashes.clear()
    dups_before = ctx.watch.wire_duplicates
    say(f"scenario {number}: {title} ...")
    outcome = function(ctx, stats)
    figures, _ = checks.wait_settled(ctx.stack, stats, ctx.events, ctx.watch)
    recovered = outcome.clock.wait()
    problems = list(outcome.problems)
    if figures.lost:
        problems.append(f"{figures.lost} events lost")
    if figures.pending:
        problems.append(f"{figures.pending} outbox rows still pending")
    if figures.dead:
        problems.append(f"{figures.dead} outbox rows dead")
    if figures.orders_missing:
        problems.append(f"{figures.orders_missing} orders answered 201 but missing")
    if figures.users_unprocessed:
        problems.append(f"{figures.users_unprocessed} user events not processed")
    if figures.duplicate_orders or figures.duplicate_transitions or figures.replica_wrong:
        problems.append(
            f"duplicate effects: orders {figures.duplicate_orders}, transitions {figures.duplicate_transitions}, "
            f"replica wrong {figures.replica_wrong}"
        )
    if ctx.watch.order_violations:
        problems.append(f"{ctx.watch.order_violations} per-key order violations")
    if stats.errors_500:
        problems.append(f"{stats.errors_500} 5xx other than 503 with Retry-After")
    if recovered is None:
        problems.append("not recovered")
    if ctx.crashes:
        problems.append("exited by themselves: " + ", ".join(ctx.crashes))
        ctx.crashes.clear()
    line = _line(number, title, stats, before, figures, ctx.watch, dups_before, recovered, problems, outcome.notes)
    return line, not problems


def run(repo: Path, numbers: list[int] | None, quick: bool, keep: bool) -> int:
    os.chdir(repo)
    signal.signal(signal.SIGTERM, _terminate)
    chosen = numbers or [n for n, (_, _, in_quick) in SCENARIOS.items() if in_quick or not quick]
    scratch = Path(tempfile.mkdtemp(prefix="orders-chaos-"))
    stack = Stack(repo, scratch)
    stop = threading.Event()
    lines: list[str] = []
    code = 0
    began = time.monotonic()
    events: UserEvents | None = None
    try:
        say(f"starting the service (scenarios {','.join(map(str, chosen))}{', quick' if quick else ''})")
        stack.prepare()
        say("web x2, worker x2, beat, consumer ready")
        events = UserEvents(stack.kafka_direct)
        users = [f"chaos-user-{i}" for i in range(USERS)]
        for user in users:
            events.create(user)
        events.flush()
        watch = Watch()
        watch_orders(stack.kafka_direct, watch, stop)
        ctx = Ctx(stack, events, watch, users, quick)
        stack.supervise(stop, ctx.crashes)
        # The consumer stores the users first, or the first orders would be refused (422 user_not_found).
        _, took = checks.wait_settled(stack, ApiStats(), events, watch)
        say(f"{USERS} users in the replica after {took:.1f}s" if took is not None else "users not stored in time")
        for number in chosen:
            if time.monotonic() - began > TOTAL_DEADLINE:
                lines.append(f"[{number}] skipped: the run's {TOTAL_DEADLINE / 60:.0f}-minute budget is spent")
                code = 1
                continue
            line, passed = scenario(ctx, number)
            say(line)
            lines.append(line)
            if not passed:
                code = 1
    except SmokeFailed as exc:
        code = 1
        print(f"chaos: FAILED: {exc}", file=sys.stderr)
        for log in exc.logs:
            print(f"--- {log.name} ---\n{log_tail(log, 40)}", file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
        print("chaos: interrupted; stopping everything it started", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop.set()
        if events is not None:
            events.close()
        stack.stop()
        if keep or code:
            print(f"chaos: logs and data kept in {scratch}", flush=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print("\n=== make chaos ===")
    for line in lines:
        print(line)
    print(f"total {time.monotonic() - began:.0f}s: {'passed' if code == 0 else 'FAILED'}", flush=True)
    return code
