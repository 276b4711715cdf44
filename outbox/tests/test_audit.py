"""The delivery auditor against the real broker, broken on purpose: a topic deleted and created
again, foreign records at recorded offsets, an out-of-order copy. Each must be caught and named
(row id, trace id); an intact delivery must come out clean."""

import io
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.utils import timezone
from prometheus_client import REGISTRY

from outbox.audit import AuditResult, window_audit
from outbox.audit_window import CURSOR_KEY, LAST_FINDING_KEY, LAST_KEY, audit_reports, audit_step
from outbox.models import OutboxEvent
from outbox.relay import message_encode
from outbox.tasks import audit_outbox
from tests.support.outbox import all_published, enqueue, produce, relay_until, topic_recreate

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]


def _audit(**options: Any) -> AuditResult:
    now = timezone.now()
    total = AuditResult()
    for result in window_audit(
        since=now - timedelta(days=30), until=now + timedelta(minutes=1), batch_size=100, timeout=30, **options
    ):
        total.add(result)
    return total


def _published(count: int, *, keys: int = 3) -> list[OutboxEvent]:
    """`count` events over `keys` keys (an order per key, its versions in write order), relayed for real."""
    written = [
        enqueue(f"k{n % keys}", {"order_id": f"o{n % keys}", "order_version": n // keys + 1}) for n in range(count)
    ]
    relay_until(all_published)
    return list(OutboxEvent.objects.filter(id__in=[row.id for row in written]).order_by("id"))


def _trace_id(row: OutboxEvent) -> str:
    return row.headers["traceparent"].split("-")[1]


def _counter(name: str) -> float:
    return REGISTRY.get_sample_value(f"outbox_audit_{name}_total") or 0.0


@pytest.fixture(autouse=True)
def _fresh_audit_state() -> None:
    cache.delete_many([CURSOR_KEY, LAST_KEY, LAST_FINDING_KEY])


def test_an_intact_delivery_is_checked_clean(event_topic):
    rows = _published(9)

    result = _audit()

    assert result.figures() == {
        "checked": 9,
        "missing": 0,
        "misplaced": 0,
        "out_of_order": 0,
        "duplicates": 0,
        "expired": 0,
        "unread": 0,
    }
    assert result.findings == []
    assert all(row.kafka_offset is not None for row in rows)


def test_a_deleted_and_recreated_topic_shows_each_row_missing_with_its_row_and_trace_id(event_topic, caplog):
    # given published rows, and then their topic deleted and created again, empty
    rows = _published(6)
    topic_recreate(event_topic)
    missing_before = _counter("missing")

    # when the auditor reads them back
    with caplog.at_level(logging.WARNING, logger="outbox.audit"):
        result = _audit()

    # then every row is missing, and named
    assert (result.checked, result.missing, result.misplaced, result.out_of_order) == (6, 6, 0, 0)
    assert {finding.row.id for finding in result.findings} == {row.id for row in rows}
    assert {finding.kind for finding in result.findings} == {"missing"}
    # one log line per mismatch, with the row id and the trace id of the request that wrote it
    lines = [record for record in caplog.records if record.name == "outbox.audit"]
    assert sorted(record.outbox_row_id for record in lines) == [row.id for row in rows]
    for record in lines:
        row = next(row for row in rows if row.id == record.outbox_row_id)
        assert record.trace_id == _trace_id(row)
        assert f"row {row.id} " in record.getMessage() and _trace_id(row) in record.getMessage()
    assert _counter("missing") - missing_before == 6


def test_foreign_records_at_the_recorded_offsets_are_misplaced(event_topic):
    # given published rows, their topic recreated, and other records written where they were
    rows = _published(6)
    topic_recreate(event_topic)
    ends: dict[int, int] = {}
    for row in rows:
        assert row.kafka_partition is not None and row.kafka_offset is not None
        ends[row.kafka_partition] = max(ends.get(row.kafka_partition, 0), row.kafka_offset)
    produce(
        event_topic,
        [
            (partition, b"intruder", b"{}", [("event_id", f"foreign-{partition}-{n}".encode())])
            for partition, end in ends.items()
            for n in range(end + 1)
        ],
    )

    result = _audit()

    assert (result.checked, result.missing, result.misplaced) == (6, 0, 6)
    by_row = {finding.row.id: finding for finding in result.findings}
    assert set(by_row) == {row.id for row in rows}
    for row in rows:
        assert by_row[row.id].detail == (
            f"the record there is event foreign-{row.kafka_partition}-{row.kafka_offset} key=intruder"
        )


def test_an_out_of_order_copy_is_caught_and_its_duplicate_counted(event_topic):
    # given an order's two events, and a copy of the second reaching Kafka before the relay sends either
    first = enqueue("k1", {"order_id": "o1", "order_version": 1})
    second = enqueue("k1", {"order_id": "o1", "order_version": 2})
    key, value, headers = message_encode(second.key, json.dumps(second.payload), second.headers)
    produce(event_topic, [(None, key, value, headers)])

    # when the relay sends both, in order, and the auditor reads them back
    relay_until(all_published)
    result = _audit()

    # then the first event is out of order (its first delivery came after version 2's) and the copy is a duplicate
    assert (result.checked, result.missing, result.misplaced, result.out_of_order, result.duplicates) == (2, 0, 0, 1, 1)
    (finding,) = result.findings
    assert (finding.kind, finding.row.id) == ("out_of_order", first.id)
    assert "order o1 v1 first reached offset 1, after v2 (row" in finding.detail


def test_a_row_older_than_the_topics_retention_is_expired_not_missing(event_topic):
    # given published rows, one of them published 8 days ago (past the topic's retention, 7 days
    # unless the broker says otherwise), and the topic recreated
    rows = _published(3)
    OutboxEvent.objects.filter(id=rows[0].id).update(published_at=timezone.now() - timedelta(days=8))
    topic_recreate(event_topic)

    result = _audit()

    assert (result.checked, result.expired, result.missing) == (3, 1, 2)
    assert rows[0].id not in {finding.row.id for finding in result.findings}


def test_beat_audits_the_window_a_batch_a_run_and_starts_over_after_the_newest(event_topic, settings):
    # given three published rows and batches of two
    settings.OUTBOX_AUDIT_BATCH_SIZE = 2
    _published(3)
    checked_before = _counter("checked")

    # when beat's task runs three times
    runs = [audit_outbox() for _ in range(3)]

    # then the first pass takes two runs (2 + 1 rows), the third run starts the next pass
    assert [run["checked"] for run in runs] == [2, 1, 2]
    assert _counter("checked") - checked_before == 5
    last, finding = audit_reports()
    assert last is not None and last.figures["checked"] == 2 and finding is None


def test_a_run_that_finds_something_stays_the_last_finding_after_clean_runs(event_topic, settings):
    # given a run that found rows missing (their topic recreated)
    settings.OUTBOX_AUDIT_BATCH_SIZE = 10
    rows = _published(2)
    topic_recreate(event_topic)
    found = audit_step()
    assert found.missing == 2

    # when the rows are gone from the window and a later run finds nothing
    OutboxEvent.objects.filter(id__in=[row.id for row in rows]).delete()
    audit_step()

    # then the operations page still gets the finding, with its lines
    last, finding = audit_reports()
    assert last is not None and last.figures["checked"] == 0
    assert finding is not None and finding.figures["missing"] == 2
    assert all(line.startswith("missing: row ") for line in finding.findings)


def test_a_run_with_kafka_unreachable_judges_nothing_and_keeps_its_place(event_topic, settings, caplog):
    # given three published rows, batches of two, and a first run that audited two of them
    settings.OUTBOX_AUDIT_BATCH_SIZE = 2
    _published(3)
    assert audit_step().checked == 2
    reachable = settings.KAFKA_BOOTSTRAP_SERVERS

    # when the next run finds no broker (nothing listens on port 1)
    settings.KAFKA_BOOTSTRAP_SERVERS = ["127.0.0.1:1"]
    with caplog.at_level(logging.WARNING, logger="outbox.audit_window"):
        result = audit_step()

    # then it judged nothing, said so in one line, and the next run audits that row
    assert (result.checked, result.unread, result.clean) == (0, 1, True)
    assert "Delivery audit: Kafka is not reachable, 1 rows not audited" in caplog.text
    settings.KAFKA_BOOTSTRAP_SERVERS = reachable
    assert audit_step().checked == 1


def test_the_command_prints_each_finding_and_exits_1(event_topic):
    rows = _published(2)
    topic_recreate(event_topic)
    out = io.StringIO()

    with pytest.raises(CommandError, match="deliveries do not match the outbox"):
        call_command("outbox_audit", "--topic", event_topic, stdout=out)

    lines = out.getvalue().splitlines()
    assert [line.split()[:3] for line in lines[:-1]] == [["missing:", "row", str(row.id)] for row in rows]
    assert lines[-1].startswith("2 published rows checked against Kafka: 2 missing, 0 misplaced, 0 out of order")


def test_the_command_audits_a_sample_of_the_window(event_topic):
    _published(6)
    out = io.StringIO()

    call_command(
        "outbox_audit", "--sample", "4", "--since", (timezone.now() - timedelta(hours=1)).isoformat(), stdout=out
    )

    assert out.getvalue().startswith("4 published rows checked against Kafka: 0 missing, 0 misplaced, 0 out of order")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sample", "0"], "--sample must be at least 1"),
        (["--topic", "no.such.topic"], "unknown topic 'no.such.topic'"),
        (["--since", "2026-12-07T03:00Z", "--until", "2026-12-07T02:00Z"], "must be before --until"),
        (["--since", "yesterday"], "not an ISO 8601 date or time: 'yesterday'"),
        (["--timeout", "0"], "--timeout must be positive"),
    ],
)
def test_the_command_refuses_bad_arguments_plainly(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("outbox_audit", *arguments, stdout=io.StringIO())
