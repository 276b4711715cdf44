"""Two replays of the same rebuilt events at once write each event once: the partitioned outbox
has no UNIQUE(event_id), so events_replay serialises them with a lock per rebuilt id."""

import threading
import time
import uuid

import pytest
from django.db import connection, connections, transaction

from outbox.models import OutboxEvent
from outbox.services import EventSpec, ReplayWritten, events_replay

pytestmark = pytest.mark.django_db(transaction=True)

EVENT_ID = uuid.UUID("0b7a3c1e-5d2f-5a4b-9c8d-7e6f5a4b3c2d")


def _spec() -> EventSpec:
    return EventSpec("order.created", "user1", {"n": 1}, event_id=EVENT_ID, headers={"replayed": "true"})


def _second_replay_waits_or_is_done(done: threading.Event, deadline: float) -> None:
    while time.monotonic() < deadline and not done.is_set():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            if cursor.fetchone():
                return
        time.sleep(0.01)  # polling the catalog, not waiting for time to pass


def test_two_replays_of_the_same_rebuilt_event_write_it_once():
    first_written = threading.Event()
    may_commit = threading.Event()
    second_done = threading.Event()
    results: dict[str, ReplayWritten] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = events_replay(items=[_spec()])
                first_written.set()
                may_commit.wait(timeout=20)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            with transaction.atomic():
                results["second"] = events_replay(items=[_spec()])
        finally:
            second_done.set()
            connections.close_all()

    # given a replay that wrote the event and has not committed yet
    one = threading.Thread(target=first)
    one.start()
    assert first_written.wait(timeout=20)
    # when a second replay of the same event runs meanwhile, then the first commits
    two = threading.Thread(target=second)
    two.start()
    _second_replay_waits_or_is_done(second_done, time.monotonic() + 20)
    may_commit.set()
    one.join(timeout=20)
    two.join(timeout=20)

    # then the event is in the outbox once, and the second replay skipped it
    assert OutboxEvent.objects.filter(event_id=EVENT_ID).count() == 1
    assert (results["first"].rebuilt, results["second"].rebuilt, results["second"].skipped) == (1, 0, 1)
