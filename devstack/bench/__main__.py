"""python -m devstack.bench [--quick] [--write-docs] [--list-orders N] [--relay-events N,N]: `make bench`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devstack.bench import run

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench", description=run.__doc__)
    parser.add_argument("--quick", action="store_true", help="every phase scaled down, under ~2 minutes (CI)")
    parser.add_argument("--write-docs", action="store_true", help="put the table into docs/performance.md")
    parser.add_argument(
        "--list-orders", type=int, default=1_000_000, help="orders in the table for the large list figure"
    )
    parser.add_argument(
        "--relay-events", default="20000,200000", help="pending events for the relay figure, comma-separated"
    )
    args = parser.parse_args(argv)
    return run.run(
        REPO,
        quick=args.quick,
        write_docs=args.write_docs,
        list_orders=args.list_orders,
        relay_events=[int(n) for n in args.relay_events.split(",") if n.strip()],
    )


if __name__ == "__main__":
    sys.exit(main())
