"""`make restore-drill`: back up, lose, restore to a point in time, and check what Kafka says.

Phases (each prints a progress line; the summary and the checks come last):
 1. fresh servers; PostgreSQL archives its WAL to a folder; migrate; topics; a base backup;
 2. before T, through the HTTP API with the relay running: orders created, some confirmed
    and shipped (the lifecycle), some cancelled; then, with the relay stopped, orders whose
    events are still pending, a few leased to a relay that then "died";
 3. T = now() on the database;
 4. after T: the relay sends the pending events, more orders are created (each with an
    Idempotency-Key), older ones confirmed, shipped and cancelled; the WAL is switched
    and archived; the service is stopped and the database is lost;
 5. a new cluster from the base backup, recovered to T and promoted; the relay started on
    it against the same Kafka;
 6. checks: every restored order has all its events on Kafka; the events pending at T were
    sent again with their original ids (a consumer deduplicating by event_id sees nothing
    new); orphans (events of orders created after T) counted; leases of the dead relay
    taken over; a client's retry of a create after T creates the order again;
    `manage.py outbox_reconcile --publish` answers every orphan with one order.voided,
    and a second run voids nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from devstack import kafka, postgres, valkey
from devstack.bench.api import token as api_token
from devstack.bench.stack import DATABASE, Stack, production_env
from devstack.output import step
from devstack.procs import free_port
from devstack.restore_drill import pitr, service
from devstack.restore_drill.checks import Findings, check_restored

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Size:
    before: int  # orders created before T (then half shipped, a quarter cancelled)
    pending: int  # orders created before T with the relay stopped (events pending at T)
    leased: int  # of their events, leased to a relay that dies
    after: int  # orders created after T


QUICK = Size(before=8, pending=4, leased=2, after=4)
FULL = Size(before=200, pending=40, leased=10, after=100)


@dataclass
class Drill:
    stack: Stack
    kafka_address: str
    token: str = ""
    t: str = ""
    ids_at_t: set[str] = field(default_factory=set)
    after_t: list[tuple[str, str]] = field(default_factory=list)  # (idempotency key, order id)


def _servers(folder: Path, exits: ExitStack) -> Drill:
    archive = pitr.archive_folder(folder / "wal-archive")
    pg = postgres.start(folder / "postgres", free_port(), database=DATABASE, settings=pitr.archiving_settings(archive))
    exits.callback(postgres.stop, folder / "postgres")
    redis = valkey.start(folder / "valkey", free_port(), durable=False)
    exits.callback(redis.stop)
    broker = kafka.start(free_port(), log_path=folder / "tansu.log")
    exits.callback(broker.stop)
    env = production_env(
        REPO,
        POSTGRES_SERVER=pg.host,
        POSTGRES_PORT=str(pg.port),
        REDIS_HOST=redis.host,
        REDIS_PORT=str(redis.port),
        KAFKA_BOOTSTRAP_SERVERS=broker.address,
        # The beat's lifecycle must not move orders on its own: the drill advances them itself.
        ORDER_CONFIRM_DELAY="86400",
        ORDER_SHIP_DELAY="86400",
        OUTBOX_RELAY_LEASE_SECONDS="5",
    )
    return Drill(Stack(repo=REPO, folder=folder, env=env), broker.address)


def _before_t(drill: Drill, size: Size) -> None:
    stack = drill.stack
    with service.relay(stack), service.api(stack, drill.token) as api:
        ids = [api.create(f"drill-{n % 10}", f"before-{n}")[1] for n in range(size.before)]
        _confirmed, shipped = service.advance(stack)  # every order so far: confirmed and shipped
        more = [api.create(f"drill-{n % 10}", f"before-more-{n}")[1] for n in range(size.before // 2)]
        for order_id in more[: len(more) // 2]:
            api.cancel(order_id)
        service.wait_published(stack)
        step(f"before T: {len(ids) + len(more)} orders ({shipped} shipped, {len(more) // 2} cancelled), all on Kafka")
    with service.api(stack, drill.token) as api:  # the relay is stopped: these events stay pending
        for n in range(size.pending):
            api.create(f"drill-{n % 10}", f"pending-{n}")
    leased = service.lease_to_a_dead_relay(stack, size.leased)
    step(f"before T: {size.pending} orders with events pending (relay stopped), {leased} rows leased to a dead relay")


def _mark_t(drill: Drill, server: pitr.Server) -> None:
    rows = pitr.sql(server, "SELECT now(), array_agg(id::text) FROM orders_order")
    drill.t = rows[0][0].isoformat()
    drill.ids_at_t = set(rows[0][1] or [])
    step(f"T = {drill.t} (database clock): {len(drill.ids_at_t)} orders")


def _after_t(drill: Drill, size: Size, server: pitr.Server) -> None:
    stack = drill.stack
    time.sleep(0.01)  # T is a transaction's start; what follows must commit visibly after it
    with service.relay(stack), service.api(stack, drill.token) as api:
        service.wait_published(stack, timeout=60)  # the pending events (the leased ones after the lease)
        for n in range(size.after):
            key = f"after-{n}"
            drill.after_t.append((key, api.create(f"drill-{n % 10}", key)[1]))
        for _key, order_id in drill.after_t[: size.after // 4]:
            api.cancel(order_id)
        confirmed, shipped = service.advance(stack)  # the rest, and the orders pending at T
        service.wait_published(stack)
        step(f"after T: {size.after} orders created, {confirmed} confirmed and {shipped} shipped, all on Kafka")
    segment = pitr.switch_and_wait_archived(server)
    step(f"WAL switched and archived up to {segment}")


def run(size: Size, keep: bool) -> int:
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="orders-restore-drill-"))
    with ExitStack() as exits:
        if not keep:
            exits.callback(shutil.rmtree, folder, True)
        drill = _servers(folder, exits)
        stack = drill.stack
        port = int(stack.env["POSTGRES_PORT"])
        server = pitr.Server("PostgreSQL", stack.env["POSTGRES_SERVER"], port, lambda: None)
        stack.manage("migrate", "--noinput")
        stack.manage("create_kafka_topics")
        drill.token = api_token(stack)
        seconds = pitr.base_backup(server, folder / "base-backup")
        step(f"servers up, WAL archived to {folder / 'wal-archive'}; base backup in {seconds:.1f}s")

        _before_t(drill, size)
        _mark_t(drill, server)
        _after_t(drill, size, server)
        before_restore = service.kafka_messages(drill.kafka_address)
        postgres.stop(folder / "postgres")
        step(f"the database is lost ({len(before_restore)} events on Kafka)")

        restore_started = time.monotonic()
        restored = pitr.restore(
            folder / "base-backup", folder / "wal-archive", folder / "restored", port, target_time=drill.t
        )
        exits.callback(restored.stop)
        step(f"restored to T and promoted in {time.monotonic() - restore_started:.1f}s")

        findings = Findings()
        check_restored(drill, restored, before_restore, findings)
        findings.summary(time.monotonic() - started)
        if keep:
            step(f"kept: {folder}")
        return 0 if findings.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make restore-drill", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few orders a phase (CI)")
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, backup, archive)")
    args = parser.parse_args(argv)
    return run(QUICK if args.quick else FULL, args.keep)


if __name__ == "__main__":
    sys.exit(main())
