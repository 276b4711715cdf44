"""The outbox's door: `event_enqueue` / `events_enqueue` (and `events_insert_sql`, the same INSERT
for a caller's own statement) are the only way anything writes an event."""

import datetime as dt
import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders_project import contract
from orders_project.rfc3339 import rfc3339
from orders_project.tracing import traceparent_current
from outbox import dead_rows
from outbox.dead_rows import GroupAction
from outbox.kick import relay_kick
from outbox.models import OutboxEvent, OutboxStatus
from outbox.retention import RetentionResult, partitions_maintain, retention_run

_TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

logger = logging.getLogger(__name__)


def traceparent_new() -> str:
    """A fresh W3C traceparent (version 00, sampled) for work no request or span started."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


@dataclass(frozen=True)
class EventSpec:
    event_type: str
    key: str
    data: dict[str, Any]
    # Set only for events rebuilt by a replay: their deterministic id, their original
    # time, and headers to add (`replayed`). New events get a random id and now.
    event_id: uuid.UUID | None = None
    timestamp: dt.datetime | None = None
    headers: dict[str, str] = field(default_factory=dict)


def event_enqueue(*, event_type: str, key: str, data: dict[str, Any], traceparent: str | None = None) -> OutboxEvent:
    """Write one event into the outbox, inside the caller's transaction."""
    return events_enqueue(events=[EventSpec(event_type, key, data)], traceparent=traceparent)[0]


def events_enqueue(*, events: list[EventSpec], traceparent: str | None = None) -> list[OutboxEvent]:
    """Write events into the outbox with one INSERT, inside the caller's transaction.

    Their `traceparent` header is the given one when valid, else the current span's, else new.

    Must run inside `transaction.atomic()`: the events exist exactly when the
    change that caused them commits. Rows get ids in list order, which is the
    order they reach Kafka within a key. The topic comes from settings by event
    type, so deployments can rename topics without touching callers; the envelope
    `version` from the event's schema (orders_project.contract), so raising it there
    is the one step that changes what is sent.
    """
    rows = _rows_of_change(events, traceparent=traceparent, caller="events_enqueue")
    created = OutboxEvent.objects.bulk_create(rows)
    transaction.on_commit(relay_kick, robust=True)
    return created


# The columns events_insert_sql writes; the rest are NULL until the relay sets them.
_INSERT_SQL = f"""INSERT INTO {OutboxEvent._meta.db_table}
    (event_id, event_type, topic, key, payload, headers, status, attempts, next_attempt_at, last_error, created_at)
SELECT event_id, event_type, topic, key, payload::jsonb, headers::jsonb, %(outbox_status)s, 0,
    %(outbox_now)s, '', %(outbox_now)s
FROM unnest(%(outbox_event_ids)s::uuid[], %(outbox_event_types)s::text[], %(outbox_topics)s::text[],
    %(outbox_keys)s::text[], %(outbox_payloads)s::text[], %(outbox_headers)s::text[])
    AS event (event_id, event_type, topic, key, payload, headers)"""


def events_insert_sql(*, events: list[EventSpec], traceparent: str | None = None) -> tuple[str, dict[str, Any]]:
    """The INSERT of events_enqueue as SQL with its (named, `outbox_`) parameters, for a caller
    that writes the events in the statement of its own change (a data-modifying CTE: the
    change and its events in one round trip, orders.services.orders_create).

    The same rows as events_enqueue: envelope, headers, topic and traceparent alike, ids in
    list order (the rows come out of unnest in order). The caller must run the statement in
    the current transaction, which this checks, and on whose commit the relay is kicked.
    """
    rows = _rows_of_change(events, traceparent=traceparent, caller="events_insert_sql")
    params = {
        "outbox_status": OutboxStatus.PENDING.value,
        "outbox_now": rows[0].created_at if rows else timezone.now(),
        "outbox_event_ids": [row.event_id for row in rows],
        "outbox_event_types": [row.event_type for row in rows],
        "outbox_topics": [row.topic for row in rows],
        "outbox_keys": [row.key for row in rows],
        "outbox_payloads": [json.dumps(row.payload) for row in rows],
        "outbox_headers": [json.dumps(row.headers) for row in rows],
    }
    transaction.on_commit(relay_kick, robust=True)
    return _INSERT_SQL, params


def _rows_of_change(events: list[EventSpec], *, traceparent: str | None, caller: str) -> list[OutboxEvent]:
    """The rows of events reporting a change: inside its transaction, with its trace."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError(f"{caller} must be called inside the transaction of the change it reports.")
    if traceparent is None or not _TRACEPARENT.match(traceparent):
        # The span this change happens in (the request's server span, a lifecycle batch's,
        # a user event's): the relay and the event's consumers continue that trace.
        traceparent = traceparent_current() or traceparent_new()
    return _rows(events, traceparent=traceparent, now=timezone.now())


def _rows(events: list[EventSpec], *, traceparent: str, now: dt.datetime) -> list[OutboxEvent]:
    rows = []
    for spec in events:
        topic = settings.KAFKA_TOPICS[spec.event_type]
        event_id = spec.event_id or uuid.uuid4()
        payload = {
            "event_id": str(event_id),
            "event_type": spec.event_type,
            "timestamp": rfc3339(spec.timestamp or now),
            "version": contract.event_version(spec.event_type),
            "data": spec.data,
        }
        headers = {"event_id": str(event_id), "event_type": spec.event_type, "traceparent": traceparent, **spec.headers}
        rows.append(
            OutboxEvent(
                event_id=event_id,
                event_type=spec.event_type,
                topic=topic,
                key=spec.key,
                payload=payload,
                headers=headers,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return rows


@dataclass
class ReplayWritten:
    resent: int = 0  # published rows moved to the tail of their key, unchanged
    rebuilt: int = 0  # rebuilt events written as new rows
    skipped: int = 0  # rows no longer published (pending, dead, or cleaned up meanwhile), or ids already present


def events_replay(*, items: list[int | EventSpec], traceparent: str | None = None) -> ReplayWritten:
    """Queue events to be sent again, in the given order, inside the caller's transaction.

    An int is the id of a *published* row still in the outbox: it is sent again
    unchanged (same event id, payload and headers; consumers drop it if they have
    it). It is deleted and written again as a new pending row, so it goes to the
    tail of its key: the relay sends a key from its oldest unpublished row, and a
    row set back to pending in place would jump ahead of that key's unsent rows
    and of rebuilt events listed before it. An EventSpec is an event rebuilt by
    the caller (with its own event id), written as a new pending row; an id that
    is already in the outbox is skipped (a replay running at the same time).

    Within a key, rows reach Kafka in list order, after the key's rows that were
    unpublished before this call, and before rows written after it commits.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events_replay must be called inside a transaction.")
    if traceparent is None or not _TRACEPARENT.match(traceparent):
        traceparent = traceparent_new()
    now = timezone.now()
    result = ReplayWritten()
    row_ids = [item for item in items if isinstance(item, int)]
    # Locked, so a second replay waits for us (and the retention's drop of the partition).
    held = {
        row.id: row
        for row in OutboxEvent.objects.select_for_update().filter(id__in=row_ids, status=OutboxStatus.PUBLISHED)
    }
    OutboxEvent.objects.filter(id__in=list(held)).delete()
    rebuilt_ids = sorted({item.event_id for item in items if isinstance(item, EventSpec) and item.event_id})
    if rebuilt_ids:
        # The partitioned outbox has no UNIQUE(event_id) (outbox/upgrade.py), and rebuilt ids are
        # deterministic: two replays of the same changes would both write them. A lock per id,
        # held to commit and taken in id order (no deadlock), makes the second wait for the
        # first; its lookup below then sees the first's rows and skips them.
        with transaction.get_connection().cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(id::text, 0))) "
                "FROM (SELECT id FROM unnest(%s::uuid[]) AS id ORDER BY id OFFSET 0) AS ids",
                [rebuilt_ids],
            )
    present = set(OutboxEvent.objects.filter(event_id__in=rebuilt_ids).values_list("event_id", flat=True))
    rows: list[OutboxEvent] = []
    for item in items:
        if isinstance(item, EventSpec):
            if item.event_id in present:
                result.skipped += 1
            else:
                rows.extend(_rows([item], traceparent=traceparent, now=now))
                result.rebuilt += 1
            continue
        old = held.get(item)
        if old is None:
            result.skipped += 1
            continue
        rows.append(
            OutboxEvent(
                event_id=old.event_id,
                event_type=old.event_type,
                topic=old.topic,
                key=old.key,
                payload=old.payload,
                headers=old.headers,
                next_attempt_at=now,
                # The row's own write time (the admin's age, the oldest-pending metric);
                # the event's time stays in the payload.
                created_at=now,
            )
        )
        result.resent += 1
    if rows:
        OutboxEvent.objects.bulk_create(rows)
        transaction.on_commit(relay_kick, robust=True)
    return result


def event_requeue(*, event_ids: list[int]) -> list[OutboxEvent]:
    """Give the dead ones of these rows a fresh start: pending, attempts and resubmissions reset,
    due now. Returns the rows changed (id, event_id, event_type, status only: for the admin log)."""
    return dead_rows.dead_rows_requeue(event_ids=event_ids, now=timezone.now())


def event_discard(*, event_ids: list[int]) -> list[OutboxEvent]:
    """Delete the dead ones of these rows, which staff decided never to send; the rows behind them
    in their key go on. Returns the rows deleted (as event_requeue's)."""
    rows = dead_rows.dead_rows_discard(event_ids=event_ids)
    if rows:
        logger.warning("Discarded %d dead outbox events: %s", len(rows), [row.id for row in rows])
    return rows


def dead_group_requeue(*, group_id: str) -> GroupAction:
    """Requeue the dead rows of one cause (outbox/fingerprint.py), at most GROUP_ACTION_LIMIT of them."""
    return dead_rows.dead_group_requeue(group_id=group_id, now=timezone.now())


def dead_group_discard(*, group_id: str) -> GroupAction:
    """Discard the dead rows of one cause, at most GROUP_ACTION_LIMIT of them."""
    action = dead_rows.dead_group_discard(group_id=group_id)
    if action.rows:
        logger.warning("Discarded %d dead outbox events of group %s", len(action.rows), group_id)
    return action


def outbox_partitions_maintain(*, now: dt.datetime | None = None) -> list[str]:
    """Make the outbox's daily partitions for today and OUTBOX_PARTITIONS_AHEAD_DAYS ahead."""
    return partitions_maintain(now=now)


def outbox_retention_run(*, now: dt.datetime | None = None) -> RetentionResult:
    """Partitions ahead, then drop whole partitions past OUTBOX_RETENTION_DAYS whose rows are all
    published (outbox/retention.py): the cost of a catalog change, never a DELETE of rows."""
    return retention_run(now=now)
