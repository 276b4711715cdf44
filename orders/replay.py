"""Send order events again (`manage.py outbox_replay`, the order admin's replay action).

The order history (OrderStatusChange: one row per change, in the same transaction
as the change's event) says which events an order had. For each matching change:

* its event is still in the outbox and published: it is sent again unchanged
  (same event id, payload and headers) through outbox.services.events_replay;
* still pending there: left alone, the relay sends it anyway;
* dead there: left alone for staff (requeue or discard it in the outbox admin);
* gone (its partition dropped after OUTBOX_RETENTION_DAYS): rebuilt from the order and the
  history row, with a deterministic event id (uuid5 of order id, order version
  and event type, so replaying twice gives the same ids) and the header
  `replayed: true`. How rebuilt events differ from the originals: docs/events.md.

Order: changes are taken oldest first (changed_at, then history id) and written
to the outbox in that order, chunk after chunk, so within a key (the customer)
the replayed events reach Kafka in their original order, after what the key
already had waiting and before what is written after them.
"""

import copy
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from orders.events import order_cancelled_data, order_confirmed_data, order_created_data, order_shipped_data
from orders.models import Order, OrderStatus, OrderStatusChange, orders_items_load
from orders_project.rfc3339 import rfc3339
from outbox.models import OutboxEvent, OutboxStatus, delivery_text
from outbox.services import EventSpec, events_replay, traceparent_new

# Fixed namespace of rebuilt event ids: never change it, or a second replay would send new ids.
REPLAY_EVENT_NAMESPACE = uuid.UUID("6b1f3c2e-9d4a-5e7b-8c1d-2f3a4b5c6d7e")
REPLAYED_HEADER = {"replayed": "true"}
EVENT_TYPE_OF_STATUS = {
    OrderStatus.PENDING: "order.created",
    OrderStatus.CONFIRMED: "order.confirmed",
    OrderStatus.SHIPPED: "order.shipped",
    OrderStatus.CANCELLED: "order.cancelled",
}
ORDER_EVENT_TYPES = tuple(EVENT_TYPE_OF_STATUS.values())
_BUILDERS: dict[str, Callable[[Order], dict[str, Any]]] = {
    "order.created": order_created_data,
    "order.confirmed": order_confirmed_data,
    "order.shipped": order_shipped_data,
    "order.cancelled": order_cancelled_data,
}
# History rows per chunk: one outbox lookup and one write transaction each (~1 MB of events).
CHUNK_SIZE = 1000


@dataclass(frozen=True)
class ReplayFilter:
    order_ids: list[uuid.UUID] = field(default_factory=list)
    user_id: str | None = None
    event_types: list[str] = field(default_factory=list)
    since: datetime | None = None  # changes at or after
    until: datetime | None = None  # changes before


@dataclass(frozen=True)
class ReplayItem:
    source: str  # "outbox" (sent again unchanged), "rebuilt", "pending" or "dead" (both left alone)
    event_type: str
    event_id: uuid.UUID
    key: str
    order_id: uuid.UUID
    order_version: int
    changed_at: datetime
    row_id: int | None = None
    spec: EventSpec | None = None
    # Where Kafka put the outbox row ("order.created [2] @ 18,443", "unknown" if published
    # before that was recorded, "-" if not published); None for a rebuilt event (no row).
    delivery: str | None = None

    def describe(self) -> str:
        delivered = f" delivered={self.delivery}" if self.delivery is not None else ""
        return (
            f"{self.source:8} {self.event_type:16} {self.event_id} key={self.key} "
            f"order={self.order_id} v{self.order_version} at={rfc3339(self.changed_at)}{delivered}"
        )


@dataclass
class ReplayResult:
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # by ReplayItem.source
    queued: int = 0  # written to the outbox (resent + rebuilt)
    skipped: int = 0  # changed under us between the plan and the write (see events_replay)

    def line(self) -> str:
        parts = ", ".join(f"{count} {source}" for source, count in sorted(self.counts.items()))
        return f"{sum(self.counts.values())}/{self.total} changes ({parts or 'none'}); {self.queued} queued"


def replay_event_id(*, order_id: uuid.UUID, order_version: int, event_type: str) -> uuid.UUID:
    """The id of a rebuilt event: the same on every replay."""
    return uuid.uuid5(REPLAY_EVENT_NAMESPACE, f"{order_id}:{order_version}:{event_type}")


def _changes(replay_filter: ReplayFilter) -> QuerySet[OrderStatusChange]:
    changes = OrderStatusChange.objects.all()
    if replay_filter.order_ids:
        changes = changes.filter(order_id__in=replay_filter.order_ids)
    if replay_filter.user_id is not None:
        changes = changes.filter(order__user_id=replay_filter.user_id)
    if replay_filter.event_types:
        statuses = [status for status, kind in EVENT_TYPE_OF_STATUS.items() if kind in replay_filter.event_types]
        changes = changes.filter(to_status__in=statuses)
    if replay_filter.since is not None:
        changes = changes.filter(changed_at__gte=replay_filter.since)
    if replay_filter.until is not None:
        changes = changes.filter(changed_at__lt=replay_filter.until)
    return changes


def replay_count(replay_filter: ReplayFilter) -> int:
    return _changes(replay_filter).count()


def _rebuild(order: Order, change: OrderStatusChange, event_type: str) -> EventSpec:
    """The event of `change`, from the order as it is now: every field of a step is set by
    that step and never changed later, so only what the history does not keep differs."""
    snapshot = copy.copy(order)  # shares the prefetched items; the original stays untouched
    snapshot.status = change.to_status
    snapshot.version = change.order_version
    if change.to_status == OrderStatus.CANCELLED:
        snapshot.cancel_reason = change.reason or order.cancel_reason
        snapshot.cancelled_at = order.cancelled_at or change.changed_at
    elif change.to_status == OrderStatus.CONFIRMED:
        snapshot.confirmed_at = order.confirmed_at or change.changed_at
    elif change.to_status == OrderStatus.SHIPPED:
        snapshot.shipped_at = order.shipped_at or change.changed_at
    return EventSpec(
        event_type,
        order.user_id,
        _BUILDERS[event_type](snapshot),
        event_id=replay_event_id(order_id=order.id, order_version=change.order_version, event_type=event_type),
        timestamp=change.changed_at,
        headers=REPLAYED_HEADER,
    )


_HeldRow = tuple[int, str, uuid.UUID, str]


def _outbox_rows(order_ids: list[uuid.UUID]) -> dict[tuple[str, int], _HeldRow]:
    """(order id, order version) -> (row id, status, event id, delivery) of the order events still in the outbox."""
    rows = OutboxEvent.objects.filter(
        event_type__in=ORDER_EVENT_TYPES, payload__data__order_id__in=[str(order_id) for order_id in order_ids]
    ).values_list(
        "id",
        "status",
        "event_id",
        "topic",
        "kafka_partition",
        "kafka_offset",
        "payload__data__order_id",
        "payload__data__order_version",
    )
    return {
        (order_id, int(version)): (row_id, status, event_id, delivery_text(status, topic, partition, offset))
        for row_id, status, event_id, topic, partition, offset, order_id, version in rows
    }


def replay_plan(replay_filter: ReplayFilter, *, chunk_size: int = CHUNK_SIZE) -> Iterator[list[ReplayItem]]:
    """The matching changes, oldest first, as chunks of ReplayItems (keyset paging: no OFFSET)."""
    changes = _changes(replay_filter).order_by("changed_at", "id")
    after: tuple[datetime, int] | None = None
    while True:
        page = changes
        if after is not None:
            page = page.filter(Q(changed_at__gt=after[0]) | Q(changed_at=after[0], id__gt=after[1]))
        chunk = list(page[:chunk_size])
        if not chunk:
            return
        after = (chunk[-1].changed_at, chunk[-1].id)
        order_ids = list({change.order_id for change in chunk})
        by_id = {order.id: order for order in orders_items_load(list(Order.objects.filter(id__in=order_ids)))}
        held = _outbox_rows(order_ids)
        yield [_item(change, by_id[change.order_id], held) for change in chunk]


def _item(change: OrderStatusChange, order: Order, held: dict[tuple[str, int], _HeldRow]) -> ReplayItem:
    event_type = EVENT_TYPE_OF_STATUS[OrderStatus(change.to_status)]
    common = {
        "event_type": event_type,
        "key": order.user_id,
        "order_id": order.id,
        "order_version": change.order_version,
        "changed_at": change.changed_at,
    }
    row = held.get((str(order.id), change.order_version))
    if row is not None:
        row_id, status, event_id, delivery = row
        source = {OutboxStatus.PUBLISHED: "outbox", OutboxStatus.PENDING: "pending"}.get(OutboxStatus(status), "dead")
        return ReplayItem(source=source, event_id=event_id, row_id=row_id, delivery=delivery, **common)  # type: ignore[arg-type]
    spec = _rebuild(order, change, event_type)
    assert spec.event_id is not None
    return ReplayItem(source="rebuilt", event_id=spec.event_id, spec=spec, **common)  # type: ignore[arg-type]


def orders_replay(
    *,
    replay_filter: ReplayFilter,
    dry_run: bool = False,
    rate: float | None = None,
    report: Callable[[str], None] | None = None,
    show: Callable[[ReplayItem], None] | None = None,
    progress_seconds: float = 5.0,
    chunk_size: int = CHUNK_SIZE,
) -> ReplayResult:
    """Queue the matching order events for the relay again (or, with dry_run, only plan them).

    `rate` bounds events queued per second (the relay then sends them at most that
    fast); `show` is called for every planned item, `report` with a progress line
    at most every `progress_seconds` and once at the end.
    """
    result = ReplayResult(total=replay_count(replay_filter))
    if rate is not None:
        chunk_size = max(1, min(chunk_size, int(rate)))  # a chunk is at most a second's worth
    traceparent = traceparent_new()  # one trace for the whole replay run
    started = last_report = time.monotonic()
    for chunk in replay_plan(replay_filter, chunk_size=chunk_size):
        for item in chunk:
            result.counts[item.source] = result.counts.get(item.source, 0) + 1
            if show is not None:
                show(item)
        if not dry_run:
            sendable: list[int | EventSpec] = []
            for item in chunk:
                if item.source == "outbox" and item.row_id is not None:
                    sendable.append(item.row_id)
                elif item.spec is not None:
                    sendable.append(item.spec)
            if sendable:
                with transaction.atomic():
                    written = events_replay(items=sendable, traceparent=traceparent)
                result.queued += written.resent + written.rebuilt
                result.skipped += written.skipped
                if rate is not None:
                    # Pace: the queued events may not get ahead of `rate` per second.
                    ahead = result.queued / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        if report is not None and time.monotonic() - last_report >= progress_seconds:
            report(_progress(result, started))
            last_report = time.monotonic()
    if report is not None:
        report(_progress(result, started) + (" (dry run: nothing queued)" if dry_run else ""))
    return result


def _progress(result: ReplayResult, started: float) -> str:
    elapsed = max(time.monotonic() - started, 1e-6)
    return f"replay: {result.line()} in {elapsed:.1f}s ({result.queued / elapsed:.0f} queued/s)"
