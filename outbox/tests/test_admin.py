"""The outbox admin: pending and dead counts in the title, requeue and discard for staff."""

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outbox.models import OutboxEvent, OutboxStatus
from tests.support.outbox import outbox_row

pytestmark = pytest.mark.django_db

URL = "/admin/outbox/outboxevent/"


def _staff(username: str, *permissions: str):
    user = get_user_model().objects.create_user(username=username, password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="outbox", codename__in=permissions))
    return user


@pytest.fixture
def operator_client(client):
    client.force_login(_staff("operator", "view_outboxevent", "change_outboxevent"))
    return client


def _dead(key: str = "user123") -> OutboxEvent:
    return outbox_row(key, status=OutboxStatus.DEAD, last_error="MessageSizeTooLargeError: too big")


def test_the_changelist_shows_the_pending_and_dead_counts_in_its_title(operator_client):
    # given two pending, one dead and three published rows
    for status in ["pending", "pending", "dead", "published", "published", "published"]:
        outbox_row("user123", status=status)

    response = operator_client.get(URL)

    assert response.status_code == 200
    assert response.context["title"] == "Outbox events: 2 pending, 1 dead"
    assert "<h1>Outbox events: 2 pending, 1 dead</h1>" in response.content.decode()
    assert response.context["cl"].result_count == 6


def test_the_changelist_shows_where_kafka_put_each_published_row(operator_client):
    # given a row published with its coordinates, one published before they were recorded, one pending
    outbox_row("user123", status=OutboxStatus.PUBLISHED)
    OutboxEvent.objects.filter(status=OutboxStatus.PUBLISHED).update(kafka_partition=2, kafka_offset=18443)
    outbox_row("user123", status=OutboxStatus.PUBLISHED)
    outbox_row("user123", status=OutboxStatus.PENDING)

    page = operator_client.get(URL).content.decode()

    cells = re.findall(r'<td class="field-delivered_to">([^<]*)</td>', page)
    assert sorted(cells) == sorted(["order.created [2] @ 18,443", "unknown", "-"])


def test_requeue_action_gives_dead_rows_a_fresh_start_and_leaves_others_alone(operator_client):
    dead, published = _dead(), outbox_row("user123", status=OutboxStatus.PUBLISHED)

    response = operator_client.post(URL, {"action": "requeue", ACTION_CHECKBOX_NAME: [dead.id, published.id]})

    assert response.status_code == 302
    dead.refresh_from_db()
    published.refresh_from_db()
    assert (dead.status, dead.attempts, dead.last_error) == (OutboxStatus.PENDING, 0, "")
    assert dead.next_attempt_at <= timezone.now()
    assert published.status == OutboxStatus.PUBLISHED
    messages = [str(m) for m in operator_client.get(URL).context["messages"]]
    assert messages == ["Requeued 1 dead events (others were not dead)."]
    # and the admin log holds one entry, for the row that changed
    entries = [(e.object_id, e.action_flag, e.change_message, e.user.username) for e in LogEntry.objects.all()]
    assert entries == [(str(dead.id), CHANGE, "Requeued (a dead row chosen in the list).", "operator")]


def test_discard_action_deletes_only_dead_rows(client):
    client.force_login(_staff("cleaner", "view_outboxevent", "change_outboxevent", "delete_outboxevent"))
    dead, pending = _dead(), outbox_row("user123", status=OutboxStatus.PENDING)

    response = client.post(URL, {"action": "discard", ACTION_CHECKBOX_NAME: [dead.id, pending.id]})

    assert response.status_code == 302
    assert list(OutboxEvent.objects.values_list("id", flat=True)) == [pending.id]
    assert client.get(URL).context["title"] == "Outbox events: 1 pending, 0 dead"
    # and the admin log holds one entry, for the row deleted
    entries = [(e.object_id, e.action_flag, e.change_message, e.user.username) for e in LogEntry.objects.all()]
    assert entries == [(str(dead.id), DELETION, "Discarded (a dead row chosen in the list).", "cleaner")]


def test_discard_needs_the_delete_permission_requeue_does_not(operator_client):
    # the operator may change (requeue) but not delete
    dead = _dead()

    page = operator_client.get(URL)
    response = operator_client.post(URL, {"action": "discard", ACTION_CHECKBOX_NAME: [dead.id]})

    assert 'value="requeue"' in page.content.decode()
    assert 'value="discard"' not in page.content.decode()
    assert response.status_code == 302  # back to the list, "no action selected"
    assert OutboxEvent.objects.get().status == OutboxStatus.DEAD


def test_the_changelist_neither_counts_nor_scans_the_whole_table(operator_client):
    for status in ["pending", "dead", "published"]:
        outbox_row("user123", status=status)

    with CaptureQueriesContext(connection) as queries:
        response = operator_client.get(URL, {"status__exact": "dead"})

    assert response.status_code == 200
    sql = [q["sql"].upper() for q in queries.captured_queries if "OUTBOX_OUTBOXEVENT" in q["sql"].upper()]
    assert all("LIMIT" in q for q in sql if "COUNT(" in q), sql
    assert not [q for q in sql if "DISTINCT" in q], sql


def test_staff_who_may_only_view_get_no_actions_and_change_nothing(client):
    client.force_login(_staff("viewer", "view_outboxevent"))
    dead = _dead()

    page = client.get(URL)
    response = client.post(URL, {"action": "discard", ACTION_CHECKBOX_NAME: [dead.id]})

    assert page.status_code == 200
    assert page.context["action_form"] is None
    assert 'value="discard"' not in page.content.decode()
    assert response.status_code == 200  # the list again: there is no such action for this user
    assert OutboxEvent.objects.get().status == OutboxStatus.DEAD


def test_rows_cannot_be_added_edited_or_deleted_one_by_one(operator_client):
    dead = _dead()

    assert operator_client.get(f"{URL}add/").status_code == 403
    assert operator_client.post(f"{URL}{dead.id}/change/", {"status": "pending"}).status_code == 403
    assert operator_client.post(f"{URL}{dead.id}/delete/", {"post": "yes"}).status_code == 403
    assert OutboxEvent.objects.get().status == OutboxStatus.DEAD


def test_a_non_staff_user_is_sent_to_the_login_page(client):
    client.force_login(get_user_model().objects.create_user(username="customer", password="x"))

    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
