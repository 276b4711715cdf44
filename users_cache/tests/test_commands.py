"""The commands: consume_user_events as a real process (SIGTERM, SIGKILL, restart),
produce_user_events and its generator."""

import datetime as dt
import io
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import transaction

from devstack.bench import user_events
from devstack.procs import free_port
from orders.models import Order, OrderStatus
from orders.tests.factories import OrderFactory
from outbox.models import OutboxEvent
from tests.support.users import (
    SESSION_TIMEOUT_MS,
    WAIT_SECONDS,
    at,
    committed,
    lock_waiters,
    read_topics,
    user_event,
    user_hash,
    users_snapshot,
)
from tests.support.waiting import wait_for
from users_cache.events import BadMessage, event_parse
from users_cache.generator import MALFORMED_KINDS, GeneratorShares, user_events_generate

MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"


@pytest.fixture
def run_command(kafka_bootstrap: str, user_topics: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Start `manage.py consume_user_events` against the test database, Redis DB and topics."""
    database = settings.DATABASES["default"]
    env: dict[str, str] = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "orders_project.settings_test",
        "POSTGRES_SERVER": str(database["HOST"]),
        "POSTGRES_PORT": str(database["PORT"]),
        "POSTGRES_USER": str(database["USER"]),
        "POSTGRES_PASSWORD": str(database["PASSWORD"]),
        "POSTGRES_DB": str(database["NAME"]),  # the test database while tests run
        "REDIS_HOST": settings.REDIS_HOST,
        "REDIS_PORT": str(settings.REDIS_PORT),
        "REDIS_DB": str(settings.REDIS_DB),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_USER_CREATED": user_topics["user.created"],
        "KAFKA_TOPIC_USER_UPDATED": user_topics["user.updated"],
        "KAFKA_TOPIC_USER_DELETED": user_topics["user.deleted"],
        "PYTHONUNBUFFERED": "1",
    }
    started: list[subprocess.Popen[bytes]] = []

    def run(group_id: str) -> subprocess.Popen[bytes]:
        args = ["consume_user_events", "--group-id", group_id, "--session-timeout-ms", str(SESSION_TIMEOUT_MS)]
        log = open(tmp_path / f"consumer-{len(started)}.log", "wb")  # noqa: SIM115  # the child writes it
        proc = subprocess.Popen(
            [sys.executable, str(MANAGE_PY), *args],
            env={**env, "METRICS_PORT": str(free_port())},  # each its own: 9100 may be taken here
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _cancel_events(order: Order) -> list[str]:
    events = OutboxEvent.objects.filter(event_type="order.cancelled", payload__data__order_id=str(order.pk))
    return [event.payload["data"]["reason"] for event in events]


@pytest.mark.processes
@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_sigterm_finishes_the_message_commits_exits_0_and_a_restart_resumes_after_it(
    kafka_bootstrap: str,
    user_topics: dict[str, str],
    send: Any,
    run_command: Any,
    start_consumer: Any,
    redis_db: redis.Redis,
) -> None:
    order = OrderFactory.create(user_id="gone", status=OrderStatus.PENDING)
    send(("user.deleted", user_event("user.deleted", "gone", at(50))))
    group = "test-sigterm"
    with transaction.atomic():
        # Hold the order's row lock so the process is stopped in the middle of the message.
        Order.objects.select_for_update().get(pk=order.pk)
        proc = run_command(group)
        wait_for(lambda: lock_waiters() == 1, "the consumer to wait for the order's row lock")
        proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=WAIT_SECONDS)

    assert proc.returncode == 0
    assert stdout.decode().strip() == "Stopped after 1 messages: {'applied': 1}"
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert _cancel_events(order) == ["user_deleted"]
    assert user_hash(redis_db, "gone")["deleted"] == "1"
    assert committed(kafka_bootstrap, group, user_topics["user.deleted"]) == 1

    send(("user.deleted", user_event("user.deleted", "next", at(60))))
    restarted = start_consumer(group)
    restarted.wait_total(1)
    wait_for(lambda: committed(kafka_bootstrap, group, user_topics["user.deleted"]) == 2, "the restart's commit")
    restarted.stop()

    assert restarted.counts == {"applied": 1}  # only the new message: nothing before the commit came again
    assert user_hash(redis_db, "next")["deleted"] == "1"
    assert _cancel_events(order) == ["user_deleted"]


@pytest.mark.processes
@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_sigkill_after_the_redis_write_before_the_commit_changes_nothing_on_redelivery(
    kafka_bootstrap: str,
    user_topics: dict[str, str],
    send: Any,
    run_command: Any,
    start_consumer: Any,
    redis_db: redis.Redis,
) -> None:
    first = OrderFactory.create(user_id="first", status=OrderStatus.PENDING)
    second = OrderFactory.create(user_id="second", status=OrderStatus.PENDING)
    # One partition, one fetch: both in one batch, and the batch's commit comes after both.
    send(
        ("user.deleted", user_event("user.deleted", "first", at(50), reason="account_closed")),
        ("user.deleted", user_event("user.deleted", "second", at(51))),
    )
    group = "test-sigkill"
    with transaction.atomic():
        Order.objects.select_for_update().get(pk=second.pk)  # the process stops on the second message
        proc = run_command(group)
        wait_for(lambda: user_hash(redis_db, "first").get("deleted") == "1", "the first effect in Redis")
        wait_for(lambda: lock_waiters() == 1, "the consumer to block on the second message")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(WAIT_SECONDS) == -signal.SIGKILL
        stored = users_snapshot(redis_db)
    assert committed(kafka_bootstrap, group, user_topics["user.deleted"]) is None
    first.refresh_from_db()
    assert first.status == OrderStatus.CANCELLED

    again = start_consumer(group)
    again.wait_total(2)
    again.stop()

    assert again.counts == {"duplicate": 1, "applied": 1}
    after = users_snapshot(redis_db)
    # Tombstone first: the killed process had written the second user's tombstone (not its
    # event marker); the redelivery writes the same tombstone again, then cancels, then marks.
    assert stored[b"users:user:second"][0][b"deleted"] == b"1"
    assert {key: value for key, value in after.items() if key in stored} == stored
    assert len(after) == len(stored) + 1  # the second event's marker, nothing else
    assert _cancel_events(first) == ["user_deleted"]
    second.refresh_from_db()
    assert (second.status, _cancel_events(second)) == (OrderStatus.CANCELLED, ["user_deleted"])


@pytest.mark.kafka
def test_produce_user_events_sends_count_messages_to_the_user_topics(
    kafka_bootstrap: str, user_topics: dict[str, str]
) -> None:
    out = io.StringIO()

    call_command(
        "produce_user_events", count=40, seed=3, malformed=0.1, duplicates=0.1, stdout=out, stderr=io.StringIO()
    )

    assert out.getvalue().startswith("Sent 40 user events in ")
    records = read_topics(kafka_bootstrap, list(user_topics.values()), lambda found: len(found) >= 40)
    assert len(records) == 40
    expected = Counter(m.event_type for m in user_events_generate(count=40, seed=3, shares=_shares(0.1, 0.1)))
    assert Counter(record.topic for record in records) == Counter({user_topics[t]: n for t, n in expected.items()})


def _shares(malformed: float, duplicates: float) -> GeneratorShares:
    return GeneratorShares(malformed=malformed, duplicates=duplicates)


@pytest.mark.parametrize("option", ["count", "rate"])
def test_produce_user_events_refuses_negative_numbers(option: str) -> None:
    with pytest.raises(CommandError, match="must not be negative"):
        call_command("produce_user_events", **{option: -1})


def test_generator_is_repeatable_with_a_seed() -> None:
    def values(seed: int) -> list[bytes]:
        return [m.value for m in user_events_generate(count=50, seed=seed, start=at(0))]

    first = values(7)

    assert first == values(7)
    assert first != values(8)


def test_generator_messages_follow_the_contract_unless_malformed() -> None:
    shares = GeneratorShares(updates=0.4, deletes=0.1, out_of_order=0.5)
    messages = list(user_events_generate(count=300, shares=shares, seed=1, start=at(0)))

    events = [event_parse(m.value, topic_kind=m.event_type.removeprefix("user.")) for m in messages]

    assert Counter(e.kind for e in events).keys() == {"created", "updated", "deleted"}
    assert all(m.key == e.user_id.encode() for m, e in zip(messages, events, strict=True))
    last: dict[str, int] = {}
    older = 0
    for event in events:
        older += event.timestamp_ms < last.get(event.user_id, -1)
        last[event.user_id] = max(last.get(event.user_id, -1), event.timestamp_ms)
    assert older > 0  # out-of-order updates really are dated before the user's last event


def test_generator_duplicates_are_byte_identical_and_malformed_are_refused() -> None:
    shares = GeneratorShares(duplicates=0.2, malformed=0.2)
    messages = list(user_events_generate(count=300, shares=shares, seed=2, start=at(0)))

    repeats = sum(count - 1 for count in Counter(m.value for m in messages).values())
    reasons = set()
    for message in messages:
        try:
            event_parse(message.value, topic_kind=message.event_type.removeprefix("user."))
        except BadMessage as exc:
            reasons.add(exc.reason.split(" '")[0])

    assert repeats > 20
    assert reasons == {
        "not JSON",
        "missing event_id",
        "missing user_id",
        "unknown event_type",
        "name must be a string",
    }
    assert len(MALFORMED_KINDS) == len(reasons)


def test_generated_created_event_carries_the_whole_user() -> None:
    (message,) = user_events_generate(count=1, seed=4, start=at(0))

    body = json.loads(message.value)

    assert message.event_type == body["event_type"] == "user.created"
    assert set(body["data"]) == {"user_id", "email", "name", "status", "created_at"}
    assert body["data"]["status"] == "active"


@pytest.mark.kafka
@pytest.mark.django_db
def test_user_events_bench_prints_the_rate_and_cleans_its_redis_keys(
    kafka_bootstrap: str, redis_db: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    redis_db.set("users:user:someone-else", "kept")

    # (a poll a message: 60 events in one poll would be handled between two of the bench's looks)
    user_events.main(["--count", "60", "--max-poll-records", "1", "--bootstrap-servers", kafka_bootstrap])

    assert re.fullmatch(
        r"\d+ events/s into Redis, CPU \d+ us/event: \d+ handled in [\d.]+s after the first "
        r"\(60 events, 3 partitions per topic, "
        r"outcomes \{.*\}; produced at \d+/s; broker given\)\n"
        r"topics bench\.user\.created\.(\w+),bench\.user\.updated\.\1,bench\.user\.deleted\.\1\n",
        capsys.readouterr().out,
    )
    assert list(redis_db.scan_iter(match="users:*")) == [b"users:user:someone-else"]


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_rebuild_until_caught_up_restores_lost_users_from_the_beginning_and_exits(
    user_topics: dict[str, str], send: Any, start_consumer: Any, redis_db: redis.Redis
) -> None:
    # given users the normal consumer applied, their event markers still remembered...
    shares = GeneratorShares(updates=0.3, deletes=0.1)
    messages = list(user_events_generate(count=150, shares=shares, seed=5, start=at(0)))
    send(*[(message.event_type, message.value) for message in messages])
    consumer = start_consumer()
    consumer.wait_total(150)
    consumer.stop()
    users = sorted(redis_db.scan_iter(match="users:user:*"))
    before = {key: redis_db.hgetall(key) for key in users}
    deleted = {key for key, fields in before.items() if fields.get(b"deleted") == b"1"}
    assert 0 < len(deleted) < len(users)
    # ...whose records were then lost (the 24 h expiry of older versions, or a wiped Redis)
    redis_db.delete(*users)

    # when the replica is rebuilt
    out = io.StringIO()
    call_command(
        "consume_user_events",
        rebuild=True,
        until_caught_up=True,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        progress_seconds=0,
        stdout=out,
    )

    # then it read every topic from the beginning in a new group, said how far it was, and stopped
    lines = out.getvalue().splitlines()
    assert re.fullmatch(
        r"rebuild: reading the user topics from the beginning as group order-service-rebuild-\d{8}T\d{6}Z", lines[0]
    )
    per_topic = Counter(message.event_type for message in messages)
    totals = ", ".join(
        f"{user_topics[t]} {per_topic[t]}/{per_topic[t]}" for t in ("user.created", "user.updated", "user.deleted")
    )
    assert re.fullmatch(rf"rebuild: {re.escape(totals)}; 150 messages in \d+s \(\d+/s\)", lines[-3])
    assert lines[-2] == "rebuild: caught up after 150 messages; stopping"
    assert lines[-1] == "Stopped after 150 messages: {'replayed': 150}"
    # and every live user is back exactly as it was, every deleted one is a tombstone again
    after = {key: redis_db.hgetall(key) for key in sorted(redis_db.scan_iter(match="users:user:*"))}
    assert after.keys() == before.keys()
    assert {key: after[key] for key in users if key not in deleted} == {
        key: before[key] for key in users if key not in deleted
    }
    assert {key for key, fields in after.items() if fields.get(b"deleted") == b"1"} == deleted
    assert [key for key in users if key not in deleted and redis_db.ttl(key) != -1] == []


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_rebuild_of_empty_topics_is_caught_up_at_once(user_topics: dict[str, str]) -> None:
    out = io.StringIO()

    call_command(
        "consume_user_events",
        rebuild=True,
        until_caught_up=True,
        group_id="empty",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        stdout=out,
    )

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("rebuild: reading the user topics from the beginning as group empty-rebuild-")
    assert lines[-2:] == ["rebuild: caught up after 0 messages; stopping", "Stopped after 0 messages: {}"]


def test_until_caught_up_needs_rebuild() -> None:
    with pytest.raises(CommandError, match=r"^--until-caught-up needs --rebuild\.$"):
        call_command("consume_user_events", until_caught_up=True)


def test_generator_default_stream_is_never_dated_in_the_future() -> None:
    # 10,000 messages 1-50 ms apart span up to 8 minutes (100,000, the bench's count, 83):
    # starting "now" would date most of them beyond USER_EVENT_MAX_FUTURE_SKEW_SECONDS, and the
    # consumer would refuse them. The start moves back with the count, so 10,000 says it as well.
    started = dt.datetime.now(dt.UTC)

    stamps = [json.loads(m.value)["timestamp"] for m in user_events_generate(count=10_000, seed=9)]

    assert max(dt.datetime.fromisoformat(stamp) for stamp in stamps) <= started
