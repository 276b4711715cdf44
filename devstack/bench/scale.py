"""python -m devstack.bench scale [--rows N] [--small-rows N] [--days D] [--pending P] [--quick]: `make bench-scale`.

The outbox at size, beside a small outbox in the same run. For each of the two sizes, on fresh
servers (PostgreSQL writing WAL with full-page images, as in production; fsync off as in every
bench): N published rows over D whole UTC days (devstack.bench.outbox_history, one partition per
day if the table is partitioned), then
1. the relay (`python -m devstack.bench relay`, one process, a fresh Tansu) draining P pending
   events written right after the fill, before any VACUUM (as after a burst), events/s and each
   claim statement's time;
2. VACUUM ANALYZE, and the relay again on P new events (vacuumed and analyzed);
3. API creates through gunicorn (devstack.bench.api, 16 connections): req/s, p99, web CPU per
   create, beside the bare psycopg loop;
4. bytes per row: heap + indexes over the rows, and each row's own size, history vs API-written;
5. retention of one day (`python -m devstack.bench retention`): the service's on the oldest
   day, today's batched DELETE on the next: seconds, WAL, rows DELETEd, sizes, dead tuples.
Prints a progress line per phase and the table (large, small, ratio); writes
bench/results/<UTC time>-scale.json. --quick: 50,000 rows, 1,000 pending (CI-sized).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from devstack.bench import api, bench_parser, outbox_history, scale_table, stack
from devstack.bench.run import Bench, results_write
from devstack.output import step

# 10,000,000 rows filled in 590 s on the 2-core VMs (17,000 rows/s; 13,000-27,000 a day as the
# machine's other load came and went), the whole run in about 15 minutes.
DEFAULT_ROWS = 10_000_000


def _parser() -> Any:
    parser = bench_parser("scale", __doc__)
    parser.add_argument("--rows", type=int, default=None, help=f"published rows (default {DEFAULT_ROWS:,})")
    parser.add_argument("--small-rows", type=int, default=10_000, help="the small table's published rows")
    parser.add_argument("--days", type=int, default=8, help="simulated days (at least 2: one per retention)")
    parser.add_argument("--pending", type=int, default=None, help="pending events per relay run (10,000)")
    parser.add_argument("--api-seconds", type=float, default=None, help="seconds of API creates (10)")
    parser.add_argument("--results", type=Path, default=None, help="the JSON's folder (default bench/results)")
    parser.add_argument("--quick", action="store_true", help="50,000 rows, 1,000 pending, 3 s of creates")
    return parser


def main(repo: Path, argv: list[str]) -> int:
    options = _parser().parse_args(argv)
    if options.days < 2:
        raise SystemExit("--days must be at least 2 (the retention and its baseline take a day each)")
    quick = options.quick
    rows = options.rows or (50_000 if quick else DEFAULT_ROWS)
    pending = options.pending or (1_000 if quick else 10_000)
    seconds = options.api_seconds or (3.0 if quick else 10.0)
    bench = Bench(repo, quick=quick)
    bench.results["options"] = {
        "rows": rows,
        "small_rows": options.small_rows,
        "days": options.days,
        "pending": pending,
    }
    for label, count in (("small", options.small_rows), ("large", rows)):
        bench.phase(label, lambda label=label, count=count: _size(bench, label, count, options.days, pending, seconds))  # type: ignore[misc]
    bench.rows += scale_table.rows(bench.results)
    results_write(bench, scale="quick" if quick else "full", suffix="-scale", folder=options.results)
    return bench.exit_code()


def _relay(servers: stack.Stack, pending: int, *, vacuumed: bool) -> dict[str, Any]:
    args = ["--events", str(pending), "--relays", "1", "--samples", "0", "--no-bare"]
    figures = servers.bench_figures("relay", *args, *([] if vacuumed else ["--no-vacuum"]), timeout=1800)
    return dict(figures["relays"]["1"])


# The API's rows are its order.created events (with items); the bare loop's baseline rows have none.
_ROW_BYTES = f"""
SELECT CASE WHEN topic = '{outbox_history.TOPIC}' THEN 'history' WHEN payload->'data' ? 'items' THEN 'api' END,
    avg(pg_column_size(t.*))
FROM {outbox_history.TABLE} AS t GROUP BY 1
"""


def _size(bench: Bench, label: str, rows: int, days: int, pending: int, seconds: float) -> None:
    figures: dict[str, Any] = {}
    bench.results[label] = figures

    def say(line: str) -> None:
        step(f"scale [{time.monotonic() - bench.started:5.0f} s] {label}: {line}")

    def measure(key: str, body: Callable[[], Any]) -> None:
        """One figure; its failure is noted and the next one measured (the fill's failure ends the size)."""
        try:
            figures[key] = body()
        except Exception as exc:
            figures[key] = {"error": repr(exc)[:2000]}
            say(f"{key} failed: {str(exc).splitlines()[0][:200]}")

    with stack.fresh(bench.repo, full_page_writes=True) as servers:
        say(f"fill {rows:,} published rows over {days} days")
        figures["fill"] = outbox_history.history_fill(servers.dsn, rows=rows, days=days, progress=say)
        say(f"relay {pending:,} pending right after the fill (no VACUUM)")
        measure("relay_burst", lambda: _relay(servers, pending, vacuumed=False))
        began = time.monotonic()
        with psycopg.connect(servers.dsn, autocommit=True) as conn:
            conn.execute(f"VACUUM ANALYZE {outbox_history.TABLE}")
        figures["vacuum_analyze_seconds"] = round(time.monotonic() - began, 1)
        say(f"relay {pending:,} pending after VACUUM ANALYZE ({figures['vacuum_analyze_seconds']} s)")
        measure("relay_vacuumed", lambda: _relay(servers, pending, vacuumed=True))
        say(f"API creates, {seconds:.0f} s at 16 connections")
        measure("api_create", lambda: api.create_figures(servers, seconds=seconds, connections=[16]))
        measure("row_bytes", lambda: _row_bytes(servers.dsn))
        first = outbox_history.first_day(days)
        day, baseline = first.isoformat(), (first + dt.timedelta(days=1)).isoformat()
        say(f"retention of {day}, batched DELETE of {baseline}")
        figures |= servers.bench_figures("retention", "--day", day, "--baseline-day", baseline, timeout=3600)
    say("done")


def _row_bytes(dsn: str) -> dict[str, Any]:
    """Table + indexes per row, and the average row's own size: history rows, order.created rows the API wrote."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        sizes = outbox_history.outbox_sizes(conn)
        per_kind = {kind: float(size) for kind, size in conn.execute(_ROW_BYTES) if kind}
    return {
        "total_per_row": round(sizes["total_bytes"] / max(1, sum(sizes["rows"].values()))),
        "history_row": round(per_kind["history"]) if "history" in per_kind else None,
        "api_row": round(per_kind["api"]) if "api" in per_kind else None,
    }
