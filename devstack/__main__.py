"""python -m devstack {dev,test,reset,deploy-check,deploy-smoke,chaos}: the commands behind the Makefile targets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="start missing servers (data in .dev/), migrate, run Procfile.dev")
    test = commands.add_parser("test", help="run pytest, with temporary embedded servers for those env does not name")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER, help="arguments for pytest, after --")
    reset = commands.add_parser("reset", help="stop what runs from .dev/ and delete it, after asking")
    reset.add_argument("--yes", action="store_true", help="do not ask")
    check = commands.add_parser(
        "deploy-check", help="hadolint, chart lint/render, kubernetes-validate, checkov, terraform fmt, tests/deploy"
    )
    check.add_argument(
        "--skip-tests", action="store_true", help="leave pytest tests/deploy out (CI: `make test` runs them)"
    )
    smoke = commands.add_parser("deploy-smoke", help="run the chart's containers as processes on embedded servers")
    smoke.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data) for a look")
    smoke.add_argument(
        "--sandbox",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the containers as the pod's user on a read-only file system but their /tmp "
        "(default: when root, with unshare and setpriv)",
    )
    chaos = commands.add_parser("chaos", help="break the running service under load; check nothing is lost")
    chaos.add_argument("--scenarios", default="", help="comma-separated scenario numbers (default: all)")
    chaos.add_argument("--quick", action="store_true", help="only the short scenarios, shortened (CI)")
    chaos.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data)")
    args = parser.parse_args(argv)

    if args.command == "chaos":
        from devstack.chaos import run as chaos_run

        numbers = [int(n) for n in args.scenarios.split(",") if n.strip()]
        return chaos_run.run(REPO, numbers or None, quick=args.quick, keep=args.keep)
    if args.command == "dev":
        from devstack import dev

        return dev.run(REPO)
    if args.command == "test":
        from devstack import testrun

        pytest_args = list(args.pytest_args)
        if pytest_args[:1] == ["--"]:
            pytest_args = pytest_args[1:]
        return testrun.run(REPO, pytest_args)
    if args.command == "deploy-check":
        from devstack import deploy_check

        return deploy_check.run(REPO, tests=not args.skip_tests)
    if args.command == "deploy-smoke":
        from devstack.deploy_smoke import scenario

        return scenario.run(REPO, keep=args.keep, sandbox=args.sandbox)
    from devstack import reset as reset_command

    return reset_command.run(REPO, assume_yes=args.yes)


if __name__ == "__main__":
    sys.exit(main())
