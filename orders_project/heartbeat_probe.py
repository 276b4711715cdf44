"""The liveness probe of the processes that serve no HTTP: is the heartbeat file fresh?

    python -I -S /app/orders_project/heartbeat_probe.py /tmp/heartbeat --max-age 60

exits 0 when the file was touched within --max-age seconds, else 1 with the
reason on stderr. The kubelet runs it every 15 s in every worker, beat and
consumer pod, so it is run by path, not with `-m`: `-m orders_project...`
would import the package first, whose __init__ loads the Celery app and
Django (~0.3 s of CPU per probe). Standard library only (`-S`: not even
site-packages), and `-I` keeps the environment's PYTHON* variables and the
working directory off its import path. The processes touch the file through
orders_project.heartbeat.
"""

import argparse
import sys
import time
from pathlib import Path


def heartbeat_age(path: Path) -> float | None:
    """Seconds since the file was last touched, or None if it does not exist."""
    try:
        return max(time.time() - path.stat().st_mtime, 0.0)
    except FileNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exit 0 if the heartbeat file is fresh, 1 if stale or missing.")
    parser.add_argument("path", type=Path)
    parser.add_argument("--max-age", type=float, default=60.0, help="Seconds (default 60).")
    args = parser.parse_args(argv)
    age = heartbeat_age(args.path)
    if age is None:
        print(f"no heartbeat at {args.path}", file=sys.stderr)
        return 1
    if age > args.max_age:
        print(f"heartbeat {age:.0f}s old (max {args.max_age:.0f}s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
