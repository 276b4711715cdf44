"""The beat schedule is defined in code and installed into django-celery-beat's tables idempotently."""

import pytest
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from orders_project.celery import app

# transaction=True: the scheduler closes stale connections, which a test-wide transaction cannot survive.
pytestmark = pytest.mark.django_db(transaction=True)


def _installed() -> dict[str, tuple[str, int, str]]:
    return {
        task.name: (task.task, task.interval.every, task.interval.period)
        for task in PeriodicTask.objects.select_related("interval").exclude(name__startswith="celery.")
    }


def test_starting_beat_installs_the_code_schedule_and_a_second_start_changes_nothing():
    # when beat's database scheduler starts (what `celery beat` does)
    DatabaseScheduler(app=app)
    first = _installed()
    counts = (PeriodicTask.objects.count(), IntervalSchedule.objects.count())

    # then every entry of CELERY_BEAT_SCHEDULE is in the tables, where the admin shows it
    assert first == {
        "outbox-relay-sweep": ("outbox.relay", settings.OUTBOX_POLL_INTERVAL_SECONDS, "seconds"),
        "outbox-retention": ("outbox.retention", 3600, "seconds"),
        "outbox-resubmit-dead": ("outbox.resubmit_dead", 60, "seconds"),
        "orders-purge-idempotency-keys": ("orders.purge_idempotency_keys", 3600, "seconds"),
        "orders-advance": ("orders.advance", settings.ORDER_PROCESSOR_INTERVAL, "seconds"),
        "outbox-audit": ("outbox.audit", settings.OUTBOX_AUDIT_INTERVAL_SECONDS, "seconds"),
    }

    # and starting it again changes nothing
    DatabaseScheduler(app=app)
    assert _installed() == first
    assert (PeriodicTask.objects.count(), IntervalSchedule.objects.count()) == counts
