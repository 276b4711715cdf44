"""manage.py outbox_replay and orders.replay: what is chosen, what is sent, in which order."""

import io
import uuid
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from orders.lifecycle import orders_advance
from orders.models import Order, OrderStatusChange
from orders.replay import REPLAYED_HEADER, ReplayFilter, orders_replay, replay_event_id
from orders.services import order_cancel
from outbox.models import OutboxEvent, OutboxStatus
from tests.support.lifecycle import order_new
from tests.support.outbox import all_published, consume, relay_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def instant_lifecycle(settings: Any) -> None:
    settings.ORDER_CONFIRM_DELAY = 0
    settings.ORDER_SHIP_DELAY = 0


def shipped_order(user_id: str) -> Order:
    """created, confirmed, shipped: three events through the real services."""
    order = order_new(user_id)
    orders_advance()
    order.refresh_from_db()
    return order


def cancelled_order(user_id: str) -> Order:
    order = order_new(user_id)
    return order_cancel(order_id=order.id, reason="changed my mind", changed_by="system:test")


def publish_all() -> None:
    """Mark every row published, as the relay would have (tests that need no Kafka)."""
    OutboxEvent.objects.update(status=OutboxStatus.PUBLISHED)


def events_of(order: Order) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(payload__data__order_id=str(order.id)).order_by("id"))


def replay(*args: str) -> str:
    out = io.StringIO()
    call_command("outbox_replay", *args, "--progress-seconds", "0", stdout=out)
    return out.getvalue()


def test_dry_run_prints_each_event_and_queues_nothing(instant_lifecycle: None) -> None:
    # given a shipped order whose three events were published (the first with its coordinates,
    # the others before coordinates were recorded)
    order = shipped_order("ada")
    publish_all()
    originals = [row.event_id for row in events_of(order)]
    OutboxEvent.objects.filter(event_id=originals[0]).update(kafka_partition=2, kafka_offset=18443)

    # when
    output = replay("--order-id", str(order.id), "--dry-run")

    # then each event is listed, oldest first, with its id, and nothing changed
    listed = [line for line in output.splitlines() if line.startswith("outbox ")]
    assert [line.split()[1] for line in listed] == ["order.created", "order.confirmed", "order.shipped"]
    assert [uuid.UUID(line.split()[2]) for line in listed] == originals
    # with where Kafka put each one
    assert [line.split(" delivered=")[1] for line in listed] == ["order.created [2] @ 18,443", "unknown", "unknown"]
    assert "replay: 3/3 changes (3 outbox); 0 queued" in output
    assert "(dry run: nothing queued)" in output
    assert not OutboxEvent.objects.exclude(status=OutboxStatus.PUBLISHED).exists()


def test_a_replay_needs_a_filter_or_all() -> None:
    with pytest.raises(CommandError, match="--all"):
        replay()


def test_filters_by_user_event_type_and_time(instant_lifecycle: None) -> None:
    # given two customers' orders at known times
    ada = shipped_order("ada")
    bob = cancelled_order("bob")
    publish_all()
    early = OrderStatusChange.objects.get(order=ada, order_version=1).changed_at
    late = OrderStatusChange.objects.get(order=bob, order_version=2).changed_at

    def chosen(**filters: Any) -> list[tuple[str, str]]:
        items: list[Any] = []
        orders_replay(replay_filter=ReplayFilter(**filters), dry_run=True, show=items.append)
        return [(item.key, item.event_type) for item in items]

    # then each filter picks exactly its events
    assert chosen(user_id="bob") == [("bob", "order.created"), ("bob", "order.cancelled")]
    assert chosen(event_types=["order.shipped", "order.cancelled"]) == [
        ("ada", "order.shipped"),
        ("bob", "order.cancelled"),
    ]
    assert chosen(since=late) == [("bob", "order.cancelled")]
    assert chosen(until=late, user_id="bob") == [("bob", "order.created")]
    assert chosen(order_ids=[ada.id], since=early, event_types=["order.created"]) == [("ada", "order.created")]


def test_events_still_in_the_outbox_go_through_the_relay_to_kafka_with_their_ids(
    topics: dict[str, str], instant_lifecycle: None
) -> None:
    # given an order whose three events reached Kafka
    order = shipped_order("ada")
    relay_until(all_published)
    originals = [str(row.event_id) for row in events_of(order)]

    # when it is replayed, and the relay runs
    output = replay("--order-id", str(order.id))
    assert "replay: 3/3 changes (3 outbox); 3 queued" in output
    relay_until(all_published)

    # then each event is on its topic twice (original, then replay), same id, payload and headers
    messages = [message for row in events_of(order) for message in consume(topics[row.event_type], [str(row.event_id)])]
    ids = [message.event_id for message in messages]
    assert sorted(ids) == sorted(originals * 2)
    for event_id in originals:
        first, again = [message for message in messages if message.event_id == event_id]
        assert (again.value, again.headers, again.key) == (first.value, first.headers, first.key)
    assert "replayed" not in messages[0].headers


def test_cleaned_up_events_are_rebuilt_with_the_replayed_header_and_deterministic_ids(
    topics: dict[str, str], instant_lifecycle: None
) -> None:
    # given a shipped order whose events were sent and then cleaned up
    order = shipped_order("ada")
    relay_until(all_published)
    originals = {row.event_type: row.payload for row in events_of(order)}
    OutboxEvent.objects.all().delete()

    # when it is replayed and relayed
    output = replay("--order-id", str(order.id))
    relay_until(all_published)

    # then the three events are rebuilt: deterministic ids, header replayed, data as the originals
    assert "replay: 3/3 changes (3 rebuilt); 3 queued" in output
    rebuilt = events_of(order)
    expected_ids = [
        replay_event_id(order_id=order.id, order_version=version, event_type=event_type)
        for version, event_type in enumerate(("order.created", "order.confirmed", "order.shipped"), start=1)
    ]
    assert [row.event_id for row in rebuilt] == expected_ids
    for row in rebuilt:
        assert row.headers["replayed"] == REPLAYED_HEADER["replayed"]
        assert row.payload["data"] == originals[row.event_type]["data"]
    shipped = consume(topics["order.shipped"], [str(expected_ids[2])])
    assert [(m.headers.get("replayed"), m.key) for m in shipped if m.event_id == str(expected_ids[2])] == [
        ("true", "ada")
    ]
    assert len(shipped) == 2  # the original (its own id) and the rebuilt one

    # and a second replay after another cleanup sends the same ids again
    OutboxEvent.objects.all().delete()
    replay("--order-id", str(order.id))
    assert [row.event_id for row in events_of(order)] == expected_ids


def test_replayed_events_of_a_key_keep_their_order_behind_what_was_waiting(instant_lifecycle: None) -> None:
    # given a customer with an old order (cleaned up), a newer one (published, still in
    # the outbox) and a newest one whose event is not sent yet
    old = shipped_order("ada")
    OutboxEvent.objects.all().delete()
    new = cancelled_order("ada")
    publish_all()
    newest = order_new("ada")
    (waiting,) = events_of(newest)

    # when the customer is replayed
    output = replay("--user-id", "ada")

    # then the key's unpublished rows, in relay order, are: the waiting one, then the
    # replay in the original order (old order's three events, then the new one's two)
    assert "(2 outbox, 1 pending, 3 rebuilt); 5 queued" in output
    rows = OutboxEvent.objects.filter(key="ada").exclude(status=OutboxStatus.PUBLISHED).order_by("id")
    sent_order = [(row.payload["data"]["order_id"], row.event_type) for row in rows]
    assert sent_order == [
        (str(newest.id), "order.created"),
        (str(old.id), "order.created"),
        (str(old.id), "order.confirmed"),
        (str(old.id), "order.shipped"),
        (str(new.id), "order.created"),
        (str(new.id), "order.cancelled"),
    ]
    assert rows.first().id == waiting.id  # type: ignore[union-attr]


def test_pending_and_dead_events_are_left_alone(instant_lifecycle: None) -> None:
    order = cancelled_order("ada")
    created, cancelled = events_of(order)
    OutboxEvent.objects.filter(id=created.id).update(status=OutboxStatus.DEAD)

    output = replay("--order-id", str(order.id))

    assert "(1 dead, 1 pending); 0 queued" in output
    assert "1 dead in the outbox" in output
    assert [(row.id, row.status) for row in events_of(order)] == [
        (created.id, OutboxStatus.DEAD),
        (cancelled.id, OutboxStatus.PENDING),
    ]


def test_rate_limits_how_fast_events_are_queued(instant_lifecycle: None) -> None:
    # given 4 orders, 12 events, all cleaned up
    for n in range(4):
        shipped_order(f"user-{n}")
    OutboxEvent.objects.all().delete()

    output = replay("--all", "--rate", "40")

    # then 12 events at 40/s took at least the 0.3 s the rate allows (the first chunk goes at once)
    assert "12 queued" in output
    seconds = float(output.strip().splitlines()[-1].split(" in ")[1].split("s ")[0])
    assert seconds >= 12 / 40 - 0.05
