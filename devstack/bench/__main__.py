"""python -m devstack.bench [--quick] [--write-docs] [--list-orders N] [--relay-events N,N] [--only PHASE,...]:
`make bench`.

python -m devstack.bench NAME [--help | ARGS]: one bench inside Django (relay, lifecycle,
user-events, api-tracing, api-profile, retention, audit, write-load-measure), against the servers the environment names.

python -m devstack.bench scale [--help | ARGS]: `make bench-scale`, the outbox at size beside a
small one, on fresh servers (devstack.bench.scale).

python -m devstack.bench write-load [--orders N]: PostgreSQL's and Kafka's write load per order
(commits, rows, WAL bytes, messages, bytes), on fresh servers (devstack.bench.write_load).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from devstack.bench import BenchError, django_setup, run
from devstack.output import error

REPO = Path(__file__).resolve().parents[2]

# Each is a module with main(argv); it imports the service's models, so Django is set up first.
DJANGO_BENCHES = {
    "relay": "devstack.bench.relay",
    "lifecycle": "devstack.bench.lifecycle",
    "user-events": "devstack.bench.user_events",
    "api-tracing": "devstack.bench.api_tracing",
    "api-profile": "devstack.bench.api_profile",
    "retention": "devstack.bench.retention",
    "audit": "devstack.bench.audit",
    "write-load-measure": "devstack.bench.write_load_measure",
}


# Each starts its own fresh servers (devstack.bench.stack) and runs benches inside Django there.
FRESH_BENCHES = ("scale", "write-load")


def django_bench(name: str, argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):
        # Help needs no servers: debug settings fill in local defaults, and setup connects to nothing.
        os.environ.setdefault("DJANGO_DEBUG", "1")
    try:
        django_setup()
    except ImproperlyConfigured as exc:
        error(
            f"bench {name} runs against the servers the environment names: {exc} "
            "After `make dev`: set -a; . .dev/env; set +a"
        )
        return 2
    bench = importlib.import_module(DJANGO_BENCHES[name])
    try:
        bench.main(argv)
    except BenchError as exc:
        error(f"bench {name}: {exc}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DJANGO_BENCHES:
        return django_bench(argv[0], argv[1:])
    if argv and argv[0] == "scale":
        from devstack.bench import scale

        return scale.main(REPO, argv[1:])
    if argv and argv[0] == "write-load":
        from devstack.bench import write_load

        return write_load.main(REPO, argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m devstack.bench",
        description=run.__doc__,
        epilog=f"One bench alone: python -m devstack.bench {{{','.join([*DJANGO_BENCHES, *FRESH_BENCHES])}}} --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="every phase scaled down, under ~2 minutes (CI)")
    parser.add_argument("--write-docs", action="store_true", help="put the table into docs/performance.md")
    parser.add_argument(
        "--list-orders", type=int, default=1_000_000, help="orders in the table for the large list figure"
    )
    parser.add_argument(
        "--relay-events", default="20000,200000", help="pending events for the relay figure, comma-separated"
    )
    parser.add_argument(
        "--only",
        default=",".join(run.PHASES),
        help=f"the phases to run, comma-separated, of {','.join(run.PHASES)} (default all)",
    )
    args = parser.parse_args(argv)
    only = tuple(name.strip() for name in args.only.split(",") if name.strip())
    unknown = sorted(set(only) - set(run.PHASES))
    if unknown:
        parser.error(f"--only: no phase {', '.join(unknown)} (phases: {', '.join(run.PHASES)})")
    return run.run(
        REPO,
        quick=args.quick,
        write_docs=args.write_docs,
        list_orders=args.list_orders,
        relay_events=[int(n) for n in args.relay_events.split(",") if n.strip()],
        only=only,
    )


if __name__ == "__main__":
    sys.exit(main())
