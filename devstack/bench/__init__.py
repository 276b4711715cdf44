"""`make bench` (python -m devstack.bench): the service's figures beside their bare baselines
(docs/performance.md), and the benches that measure one part of the service inside Django
(python -m devstack.bench <name>)."""

from __future__ import annotations

import argparse
import os


class BenchError(Exception):
    """A bench that cannot go on (refused or failed): its entry point prints it and exits 1."""


def django_setup() -> None:
    """Django for a bench run in its own process: the settings manage.py uses, unless the environment names others."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_project.settings")
    django.setup()


def bench_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of `python -m devstack.bench NAME`, its module docstring as the help."""
    return argparse.ArgumentParser(
        prog=f"python -m devstack.bench {name}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
