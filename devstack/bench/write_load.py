"""python -m devstack.bench write-load [--orders N] [--users U] [--results DIR]: the write load per order.

PostgreSQL's and Kafka's, on fresh servers (PostgreSQL writing WAL with full-page images, as in
production; fsync off as in every bench; a fresh Tansu): runs `python -m devstack.bench
write-load-measure` (N orders created through orders.services.order_create one transaction each,
confirmed and shipped by the lifecycle, every change's events relayed to Kafka before the next;
--users customers, default one an order) and prints, per order and per phase: transactions
committed, rows written (inserted + updated + deleted), WAL bytes, Kafka messages and bytes.
Writes bench/results/<UTC time>-write-load.json. docs/capacity.md carries the figures.
The counts and bytes do not depend on the machine; the seconds printed beside them do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devstack.bench import bench_parser, stack
from devstack.bench.run import Bench, results_write
from devstack.output import step

_PHASES = ("create", "lifecycle", "relay")


def _parser() -> Any:
    parser = bench_parser("write-load", __doc__)
    parser.add_argument("--orders", type=int, default=2000, help="orders created, moved and relayed (2000)")
    parser.add_argument("--users", type=int, default=None, help="distinct customers, the events' keys (one an order)")
    parser.add_argument("--results", type=Path, default=None, help="the JSON's folder (default bench/results)")
    return parser


def main(repo: Path, argv: list[str]) -> int:
    options = _parser().parse_args(argv)
    bench = Bench(repo, quick=False)
    users = options.users or options.orders
    bench.results["options"] = {
        "orders": options.orders,
        "users": users,
        "path": "orders.services.order_create, in process",
    }

    def measure() -> None:
        with stack.fresh(repo, kafka_broker=True, full_page_writes=True) as servers:
            step(f"write-load: {options.orders:,} orders created, confirmed, shipped and relayed")
            figures = servers.bench_figures(
                "write-load-measure", "--orders", str(options.orders), "--users", str(users), timeout=1800
            )
        bench.results["write_load"] = figures
        bench.rows += rows(figures)

    bench.phase("write_load", measure)
    results_write(bench, scale=str(options.orders), suffix="-write-load", folder=options.results)
    return bench.exit_code()


def rows(figures: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The table: one line per phase and the total, per order."""
    table = []
    for name in _PHASES:
        phase = figures[name]
        per = phase["per_order"]
        table.append(
            (
                f"write load per order, {name} ({phase['done']:,} done in {phase['seconds']} s)",
                f"{per['xact_commit']} commits; {per['rows_written']} rows (ins {per['tup_inserted']}, "
                f"upd {per['tup_updated']}, del {per['tup_deleted']}); {per['wal_bytes']:.0f} WAL bytes",
                "",
                "",
            )
        )
    total, kafka = figures["total_per_order"], figures["kafka"]
    table.append(
        (
            "write load per order, total",
            f"{total['xact_commit']} commits; {total['rows_written']} rows; {total['wal_bytes']:.0f} WAL bytes",
            "",
            "",
        )
    )
    table.append(
        (
            "Kafka per order (key + value + headers)",
            f"{kafka['per_order']['messages']} messages; {kafka['per_order']['bytes']} bytes "
            f"({kafka['bytes_per_message']} a message)",
            "",
            "",
        )
    )
    return table
