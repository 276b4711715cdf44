"""The automatic resubmission of dead rows: off by default, after a cool-down, up to a cap,
counted in a metric, once per row however many workers run it at once; and for real through
the relay: a row whose cause went away is delivered with its key's rows after it, in order,
and a row Kafka keeps refusing stays dead after the cap."""

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone
from prometheus_client import REGISTRY

from orders_project.celery import app
from outbox.models import OutboxEvent, OutboxStatus
from outbox.resubmission import dead_resubmit
from outbox.tasks import resubmit_dead_outbox
from tests.support.lifecycle import run_in_threads
from tests.support.outbox import all_published, by_key, consume, enqueue, outbox_row, relay_until

DEAD = OutboxStatus.DEAD


def in_thread_result(work: Callable[[], int]) -> Future[int]:
    """`work` in a thread of its own (its own database connection, closed at its end)."""

    def run() -> int:
        try:
            return work()
        finally:
            connections.close_all()

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(run)
    pool.shutdown(wait=False)
    return future


def _resubmitted_total() -> float:
    return REGISTRY.get_sample_value("outbox_dead_resubmitted_total", {"event_type": "order.created"}) or 0.0


@pytest.fixture
def resubmit_on(settings):
    settings.OUTBOX_DEAD_RESUBMIT_MAX = 2
    settings.OUTBOX_DEAD_RESUBMIT_AFTER_SECONDS = 600
    return settings


@pytest.mark.django_db
def test_it_is_off_by_default_and_then_changes_nothing(django_assert_num_queries):
    row = outbox_row("k", status=DEAD, last_error="X: y", failed_at=timezone.now() - timedelta(days=1))

    with django_assert_num_queries(0):
        assert resubmit_dead_outbox() == {"resubmitted": 0, "batches": 0}

    row.refresh_from_db()
    assert (row.status, row.resubmissions) == (DEAD, 0)


@pytest.mark.django_db(transaction=True)
def test_a_dead_row_goes_back_to_pending_after_the_cool_down_up_to_the_cap_and_is_counted(resubmit_on):
    now = timezone.now()
    cooled = outbox_row("a", status=DEAD, last_error="X: y", failed_at=now - timedelta(minutes=11))
    cooling = outbox_row("b", status=DEAD, last_error="X: y", failed_at=now - timedelta(minutes=9))
    before = _resubmitted_total()

    assert dead_resubmit().resubmitted == 1

    # then the cooled row is pending, due now, its attempts and error kept; the other still dead
    cooled.refresh_from_db()
    assert (cooled.status, cooled.resubmissions, cooled.attempts, cooled.last_error) == ("pending", 1, 5, "X: y")
    assert cooled.next_attempt_at <= timezone.now()
    assert OutboxEvent.objects.get(id=cooling.id).status == DEAD
    assert _resubmitted_total() == before + 1

    # when it dies again (the relay sets failed_at) and cools down, twice: it stays dead after the cap
    for expected in (1, 0):
        OutboxEvent.objects.filter(id=cooled.id).update(status=DEAD, failed_at=now - timedelta(minutes=11))
        OutboxEvent.objects.filter(id=cooling.id).update(failed_at=now)
        assert dead_resubmit().resubmitted == expected
    cooled.refresh_from_db()
    assert (cooled.status, cooled.resubmissions) == (DEAD, 2)
    assert _resubmitted_total() == before + 2


@pytest.mark.django_db(transaction=True)
def test_workers_resubmitting_at_once_resubmit_each_row_once(resubmit_on):
    # given 600 cooled dead rows over 60 keys
    long_ago = timezone.now() - timedelta(hours=1)
    rows = [outbox_row(f"k{n % 60}", status=DEAD, last_error="X: y", failed_at=long_ago) for n in range(600)]
    before = _resubmitted_total()

    # when four workers run it at once in small batches, each until it finds nothing
    def worker() -> int:
        total = 0
        while (done := dead_resubmit(batch_size=7, max_batches=1).resubmitted) > 0:
            total += done
        return total

    counts = run_in_threads([worker] * 4)

    # then every row was resubmitted exactly once, and counted once
    assert sum(counts) == 600
    assert set(OutboxEvent.objects.values_list("status", "resubmissions")) == {(OutboxStatus.PENDING, 1)}
    assert OutboxEvent.objects.count() == len(rows)
    assert _resubmitted_total() == before + 600


@pytest.mark.django_db(transaction=True)
def test_a_worker_skips_the_rows_another_is_resubmitting_and_does_not_resubmit_them_once_it_commits(resubmit_on):
    # given ten cooled dead rows
    long_ago = timezone.now() - timedelta(hours=1)
    rows = [outbox_row(f"k{n}", status=DEAD, last_error="X: y", failed_at=long_ago) for n in range(10)]
    first_holds, first_may_commit = threading.Event(), threading.Event()

    def first_worker() -> int:
        # a worker whose batch of the five oldest is written but not yet committed
        with transaction.atomic():
            done = dead_resubmit(batch_size=5, max_batches=1).resubmitted
            first_holds.set()
            assert first_may_commit.wait(30)
        return done

    first = in_thread_result(first_worker)
    assert first_holds.wait(30)

    # when a second worker runs meanwhile, it takes the five others (the first's are locked)
    assert dead_resubmit().resubmitted == 5
    first_may_commit.set()
    assert first.result(30) == 5

    # and once the first committed, a run finds nothing: every row was resubmitted once
    assert dead_resubmit().resubmitted == 0
    assert list(OutboxEvent.objects.order_by("id").values_list("id", "resubmissions")) == [(r.id, 1) for r in rows]


TOO_BIG = "x" * (1024 * 1024 + 1)  # over the producer's max_request_size: refused on every send


@pytest.mark.kafka
@pytest.mark.django_db(transaction=True)
def test_through_the_relay_a_row_whose_cause_is_gone_is_delivered_before_its_key_and_a_refused_one_stays_dead(
    event_topic, resubmit_on
):
    resubmit_on.OUTBOX_DEAD_RESUBMIT_AFTER_SECONDS = 1
    resubmit_on.OUTBOX_MAX_RETRY_ATTEMPTS = 5
    resubmit_on.OUTBOX_BACKOFF_BASE_SECONDS = 0
    # given a row that died of a refusal that is over (an ACL fixed since), two rows behind it,
    # and a row Kafka refuses on every send (too big) with one behind it
    healed = enqueue("healed", {"n": 0})
    behind = [enqueue("healed", {"n": n}) for n in (1, 2)]
    refused = enqueue("refused", {"blob": TOO_BIG})
    stuck = enqueue("refused", {"n": 1})
    long_ago = timezone.now() - timedelta(minutes=5)
    OutboxEvent.objects.filter(id=healed.id).update(
        status=DEAD, attempts=5, failed_at=long_ago, last_error="TopicAuthorizationFailedError: denied"
    )
    OutboxEvent.objects.filter(id=refused.id).update(status=DEAD, attempts=5, failed_at=long_ago)

    # when the resubmission and the relay run until the refused row is dead after the cap
    def settled() -> bool:
        dead_resubmit()
        row = OutboxEvent.objects.get(id=refused.id)
        return row.status == DEAD and row.resubmissions == 2 and row.failed_at is not None and row.failed_at > long_ago

    relay_until(settled)
    relay_until(lambda: OutboxEvent.objects.get(id=behind[-1].id).status == OutboxStatus.PUBLISHED)

    # then the healed key went out whole and in order
    messages = consume(event_topic, [str(r.event_id) for r in [healed, *behind]])
    assert by_key(messages)["healed"] == [str(r.event_id) for r in [healed, *behind]]
    assert "refused" not in by_key(messages)
    # and the refused row got one more send per resubmission, then stays dead; its key waits
    refused.refresh_from_db()
    assert (refused.status, refused.attempts, refused.resubmissions) == (DEAD, 7, 2)
    assert refused.last_error.startswith("MessageSizeTooLargeError: ")
    assert dead_resubmit().resubmitted == 0
    assert OutboxEvent.objects.get(id=stuck.id).status == OutboxStatus.PENDING
    assert not all_published()


def test_beat_runs_it_every_minute_and_the_worker_knows_the_task():
    assert settings.CELERY_BEAT_SCHEDULE["outbox-resubmit-dead"] == {
        "task": "outbox.resubmit_dead",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    }
    assert "outbox.resubmit_dead" in app.tasks
    assert (settings.OUTBOX_DEAD_RESUBMIT_MAX, settings.OUTBOX_DEAD_RESUBMIT_AFTER_SECONDS) == (0, 900)
