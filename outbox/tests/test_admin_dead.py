"""The outbox admin's dead-row pages: groups by cause with whole-group requeue (change
permission) and discard (delete permission, confirmed), each row's change in the admin log;
the blocked keys; the changelist filtered to one cause."""

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from outbox import selectors
from outbox.models import OutboxEvent, OutboxStatus
from tests.support.outbox import outbox_row

pytestmark = pytest.mark.django_db

GROUPS = "/admin/outbox/outboxevent/dead-groups/"
BLOCKED = "/admin/outbox/outboxevent/blocked-keys/"
DEAD = OutboxStatus.DEAD


def _login(client, username: str, *codenames: str):
    user = get_user_model().objects.create_user(username=username, password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="outbox", codename__in=codenames))
    client.force_login(user)
    return user


def _two_causes() -> tuple[list[OutboxEvent], OutboxEvent, str]:
    big = [outbox_row(f"k{n}", status=DEAD, last_error=f"MessageSizeTooLargeError: {n}000 bytes") for n in range(2)]
    other = outbox_row("k9", status=DEAD, last_error="TopicAuthorizationFailedError: denied")
    group_id = next(g.group_id for g in selectors.outbox_dead_groups().groups if g.count == 2)
    return big, other, group_id


def test_the_groups_page_shows_each_cause_and_only_the_actions_the_user_may_take(client):
    _, _, group_id = _two_causes()
    _login(client, "viewer", "view_outboxevent")

    page = client.get(GROUPS).content.decode()

    assert "MessageSizeTooLargeError: &lt;n&gt; bytes" in page
    assert "TopicAuthorizationFailedError: denied" in page
    assert f"dead_group={group_id}" in page
    assert "Requeue all" not in page and "Discard all" not in page


def test_requeue_of_a_group_needs_the_change_permission_and_logs_each_row(client):
    big, other, group_id = _two_causes()
    viewer = _login(client, "viewer", "view_outboxevent")

    assert client.post(GROUPS, {"action": "requeue", "group": group_id}).status_code == 403
    assert OutboxEvent.objects.filter(status=DEAD).count() == 3

    operator = _login(client, "operator", "view_outboxevent", "change_outboxevent")
    response = client.post(GROUPS, {"action": "requeue", "group": group_id}, follow=True)

    assert [str(m) for m in response.context["messages"]] == [f"Requeued 2 dead events of group {group_id[:8]}."]
    assert set(OutboxEvent.objects.filter(status=DEAD).values_list("id", flat=True)) == {other.id}
    entries = LogEntry.objects.filter(user=operator).order_by("object_id")
    assert [(e.object_id, e.action_flag) for e in entries] == [(str(row.id), CHANGE) for row in big]
    assert entries[0].change_message == f"Requeued with its group of dead rows {group_id} (same cause)."
    assert not LogEntry.objects.filter(user=viewer).exists()


def test_discard_of_a_group_needs_the_delete_permission_and_a_confirmation(client):
    big, other, group_id = _two_causes()
    _login(client, "operator", "view_outboxevent", "change_outboxevent")
    assert client.post(GROUPS, {"action": "discard", "group": group_id}).status_code == 403

    discarder = _login(client, "discarder", "view_outboxevent", "delete_outboxevent")
    question = client.post(GROUPS, {"action": "discard", "group": group_id})
    assert "Discard (delete, never send) the 2 dead rows of this cause?" in question.content.decode()
    assert OutboxEvent.objects.filter(status=DEAD).count() == 3  # nothing yet

    client.post(GROUPS, {"action": "discard", "group": group_id, "confirm": "yes"})

    assert list(OutboxEvent.objects.values_list("id", flat=True)) == [other.id]
    entries = LogEntry.objects.filter(user=discarder).order_by("object_id")
    assert [(e.object_id, e.action_flag) for e in entries] == [(str(row.id), DELETION) for row in big]


@pytest.mark.parametrize(
    "form",
    [{"action": "requeue", "group": "not-an-id"}, {"action": "explode", "group": "0" * 32}, {}],
)
def test_a_malformed_group_action_is_a_400_that_changes_nothing(client, form):
    _two_causes()
    _login(client, "root", "view_outboxevent", "change_outboxevent", "delete_outboxevent")

    assert client.post(GROUPS, form).status_code == 400
    assert OutboxEvent.objects.filter(status=DEAD).count() == 3


def test_an_action_on_a_group_that_is_gone_says_so(client):
    _login(client, "operator", "view_outboxevent", "change_outboxevent")

    response = client.post(GROUPS, {"action": "requeue", "group": "0" * 32}, follow=True)

    assert [str(m) for m in response.context["messages"]] == [
        "No dead rows in that group (already requeued or discarded?)."
    ]


def test_the_changelist_filtered_to_a_cause_lists_its_dead_rows(client):
    big, _, group_id = _two_causes()
    _login(client, "viewer", "view_outboxevent")

    response = client.get("/admin/outbox/outboxevent/", {"status__exact": "dead", "dead_group": group_id})

    assert sorted(row.id for row in response.context["cl"].result_list) == [row.id for row in big]


def test_the_blocked_keys_page_needs_the_view_permission_and_counts_what_waits(client):
    outbox_row("stuck", status=DEAD, last_error="X: y")
    outbox_row("stuck")
    outbox_row("stuck")
    _login(client, "nobody")
    assert client.get(BLOCKED).status_code == 403
    assert client.get(GROUPS).status_code == 403

    _login(client, "viewer", "view_outboxevent")
    response = client.get(BLOCKED)

    assert [(k.key, k.waiting) for k in response.context["blocked"].keys] == [("stuck", 2)]
    assert "1 key blocked." in response.content.decode()
