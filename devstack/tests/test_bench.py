"""The lifecycle and audit benches (python -m devstack.bench lifecycle|audit), run small, in-process.

The user-events bench is tested in users_cache/tests/test_commands.py, beside the Redis fixture it needs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from devstack.bench import BenchError, audit, lifecycle
from orders.models import Order, OrderStatus
from orders.services import ItemInput, order_create
from outbox.models import OutboxEvent

# Starts the bench's own servers and Python child processes.
pytestmark = pytest.mark.processes


@pytest.mark.django_db(transaction=True)
def test_lifecycle_bench_moves_every_order_twice_per_worker_count_and_deletes_what_it_wrote(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lifecycle.main(["--orders", "25", "--workers", "1,2"])

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "workers=1 orders=25 batch_size=500",
        "workers=2 orders=25 batch_size=500",
    ]
    assert all(re.search(r": 50 transitions in [\d.]+ s = \d+ transitions/s$", line) for line in lines)
    assert Order.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


@pytest.mark.django_db
def test_lifecycle_bench_refuses_to_advance_orders_it_did_not_write() -> None:
    order = order_create(
        user_id="someone",
        currency="EUR",
        items=[ItemInput(product_id="p1", quantity=1, price=Decimal("1.00"))],
        changed_by="system:test",
    )

    with pytest.raises(BenchError, match="1 pending/confirmed orders exist"):
        lifecycle.main(["--orders", "5"])

    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert Order.objects.count() == 1


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_audit_bench_audits_every_event_it_relayed_cleanly_and_deletes_what_it_wrote(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    audit.main(["--events", "40", "--keys", "7", "--batch-size", "15"])

    out = capsys.readouterr().out
    found = re.search(r"^figures: (.*)$", out, re.M)
    assert found is not None, out
    figures = json.loads(found.group(1))
    assert (figures["events"], figures["batch_size"], figures["duplicates"]) == (40, 15, 0)
    assert figures["rate"] > 0 and figures["bare_rate"] > 0 and figures["cpu_us_per_event"] > 0
    assert re.search(r"^audit: 40 events in [\d.]+ s = \d+ events/s; CPU \d+ us/event", out, re.M), out
    assert OutboxEvent.objects.count() == 0


def test_a_bench_runs_as_a_subcommand_that_sets_django_up_and_exits_1_on_a_refusal() -> None:
    # No database is reached: the argument check comes first. DJANGO_DEBUG: settings need no secret key.
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-m", "devstack.bench", "lifecycle", "--orders", "0"],
        cwd=Path(__file__).resolve().parents[2],
        env={**env, "DJANGO_DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == (
        "devstack: error: bench lifecycle: --orders, --batch-size and every --workers count must be at least 1."
    )


def _bench_without_servers(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m devstack.bench ARGS` in an environment that names no servers and no secret key."""
    names = ("DJANGO_", "POSTGRES_", "REDIS_", "KAFKA_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(names)}
    return subprocess.run(
        [sys.executable, "-m", "devstack.bench", *args],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_benchs_help_needs_no_servers() -> None:
    done = _bench_without_servers("api-profile", "--help")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m devstack.bench api-profile")


def test_a_bench_without_servers_says_what_the_environment_lacks_without_a_traceback() -> None:
    done = _bench_without_servers("api-profile")

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "devstack: error: bench api-profile runs against the servers the environment names: "
        "Environment variable DJANGO_SECRET_KEY is required but not set. After `make dev`: set -a; . .dev/env; set +a"
    )
