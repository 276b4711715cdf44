"""What the drill checks on the restored database and on Kafka, and the summary it prints."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devstack.output import step
from devstack.procs import Server
from devstack.restore_drill import pitr, service

if TYPE_CHECKING:
    from devstack.restore_drill.run import Drill

EVENT_OF_STATUS = {
    "pending": "order.created",
    "confirmed": "order.confirmed",
    "shipped": "order.shipped",
    "cancelled": "order.cancelled",
}
_LEASES = """
from outbox.models import OutboxEvent as E
print(E.objects.filter(status="pending", claimed_by__isnull=False).count(), E.objects.filter(status="pending").count())
"""


@dataclass
class Findings:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, ok, detail))
        step(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    @property
    def ok(self) -> bool:
        return all(ok for _name, ok, _detail in self.checks)

    def summary(self, seconds: float) -> None:
        self.figures["time taken"] = f"{seconds:.0f} s"
        print("\nrestore drill summary", flush=True)
        for name, value in self.figures.items():
            print(f"  {name:42} {value}", flush=True)
        failed = [name for name, ok, _detail in self.checks if not ok]
        verdict = "all checks passed" if not failed else f"FAILED: {', '.join(failed)}"
        print(f"  {len(self.checks)} checks: {verdict}", flush=True)


def check_restored(drill: Drill, restored: Server, before: list[service.Message], findings: Findings) -> None:
    stack = drill.stack
    ids = {str(row[0]) for row in pitr.sql(restored, "SELECT id::text FROM orders_order")}
    findings.figures["orders at T / after T (lost)"] = f"{len(drill.ids_at_t)} / {len(drill.after_t)}"
    findings.check("restored to T", ids == drill.ids_at_t, f"{len(ids)} orders, exactly those that existed at T")
    leased, pending = (int(n) for n in stack.manage("shell", "-c", _LEASES).split()[-2:])
    findings.check(
        "outbox as at T", leased > 0 and pending >= leased, f"{pending} rows pending, {leased} leased by a relay gone"
    )

    with service.relay(stack):
        seconds = service.wait_published(stack)
        findings.figures["relay caught up after the restore in"] = f"{seconds:.1f} s"
        after = service.kafka_messages(drill.kafka_address)
        _check_resent(before, after, findings)
        _check_every_order_on_kafka(restored, ids, after, findings)
        orphans = _check_orphans(drill, ids, after, findings)
        _count_ahead(restored, after, findings)
        with service.api(stack, drill.token) as api:
            _check_retry(drill, api, findings)
            _check_reconcile(drill, orphans, findings)


def _check_resent(before: list[service.Message], after: list[service.Message], findings: Findings) -> None:
    old, new = Counter(m.event_id for m in before), Counter(m.event_id for m in after)
    resent = sum(count - old[event_id] for event_id, count in new.items() if event_id in old)
    unknown = [event_id for event_id in new if event_id not in old]
    findings.figures["events on Kafka before the restore"] = len(before)
    findings.figures["events re-sent after it (original ids)"] = resent
    findings.check(
        "re-sent with original ids",
        resent > 0 and not unknown,
        f"{resent} events sent again, {len(unknown)} new event ids (deduplicating by event_id: nothing new)",
    )


def _check_every_order_on_kafka(
    restored: Server, ids: set[str], after: list[service.Message], findings: Findings
) -> None:
    history = pitr.sql(restored, "SELECT order_id::text, order_version, to_status FROM orders_orderstatuschange")
    on_kafka = {(m.order_id, m.order_version, m.event_type) for m in after}
    missing = [row for row in history if (row[0], row[1], EVENT_OF_STATUS[str(row[2])]) not in on_kafka]
    findings.check(
        "every restored order's events on Kafka",
        not missing and {str(row[0]) for row in history} == ids,
        f"{len(history)} changes of {len(ids)} orders, {len(missing)} missing",
    )


def _check_orphans(drill: Drill, ids: set[str], after: list[service.Message], findings: Findings) -> set[str]:
    orphan_events = [m for m in after if m.order_id not in ids and m.event_type != "order.voided"]
    orphans = {m.order_id for m in orphan_events}
    created_after_t = {order_id for _key, order_id in drill.after_t}
    findings.figures["orphans (orders created after T)"] = f"{len(orphans)} orders, {len(orphan_events)} events"
    findings.check("orphans are the orders created after T", orphans == created_after_t, f"{len(orphans)} orders")
    return orphans


def _count_ahead(restored: Server, after: list[service.Message], findings: Findings) -> None:
    """Events of orders that do exist, for steps after T (confirmed or shipped after it): the
    restored order is behind them, and its lifecycle will send those steps again (new ids)."""
    versions = {str(row[0]): int(row[1]) for row in pitr.sql(restored, "SELECT id::text, version FROM orders_order")}
    ahead = [m for m in after if m.order_id in versions and (m.order_version or 0) > versions[m.order_id]]
    orders = len({m.order_id for m in ahead})
    findings.figures["events ahead of their restored order"] = f"{len(ahead)} events of {orders} orders"


def _check_retry(drill: Drill, api: service.Api, findings: Findings) -> None:
    key, original = drill.after_t[0]
    status, order_id = api.create(f"drill-{0}", key)
    findings.check(
        "a client's retry after T creates the order again",
        status == 201 and order_id != original,
        f"Idempotency-Key {key!r} claimed after T is gone: {status}, order {order_id} (was {original})",
    )


def _check_reconcile(drill: Drill, orphans: set[str], findings: Findings) -> None:
    stack = drill.stack
    # A minute before T: an event sent just before T may carry a later record timestamp.
    since = (dt.datetime.fromisoformat(drill.t) - dt.timedelta(minutes=1)).isoformat()
    first = stack.manage("outbox_reconcile", "--since", since, "--publish", "--quiet").strip().splitlines()[-1]
    service.wait_published(stack)
    second = stack.manage("outbox_reconcile", "--since", since, "--publish", "--quiet").strip().splitlines()[-1]
    voided = [m.order_id for m in service.kafka_messages(drill.kafka_address, (service.VOIDED_TOPIC,))]
    findings.figures["outbox_reconcile --publish"] = first
    findings.figures["outbox_reconcile --publish, again"] = second
    findings.check(
        "every orphan answered by one order.voided",
        sorted(voided) == sorted(orphans) and second.endswith(f"({len(orphans)} already voided, 0 voided now)"),
        f"{len(voided)} order.voided on Kafka for {len(orphans)} orphans; the second run voided none",
    )
