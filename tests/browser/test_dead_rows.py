"""Dead outbox rows by cause, in Chromium: staff see the groups and the keys they block, in
the outbox admin and on the operations page, and requeue or discard a whole group at once."""

import re
from datetime import datetime, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from selenium.webdriver.common.by import By

from orders.models import Order
from orders.services import order_cancel
from orders.tests.factories import OrderFactory
from outbox import selectors
from outbox.models import OutboxEvent, OutboxStatus
from tests.support.browser import PASSWORD, admin_messages, element, log_in, texts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEAD, PUBLISHED = OutboxStatus.DEAD, OutboxStatus.PUBLISHED
TOO_BIG = "MessageSizeTooLargeError: [Error 10] MessageSizeTooLargeError: The message is {} bytes when serialized"
TOO_BIG_CAUSE = TOO_BIG.replace("10", "<n>").replace("{}", "<n>")
DENIED = "TopicAuthorizationFailedError: [Error 29] not authorized on order.cancelled from 10.0.3.{}:51234"
DENIED_CAUSE = "TopicAuthorizationFailedError: [Error <n>] not authorized on order.cancelled from <addr>"


def _staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="outbox", codename__in=codenames))
    return user


def _event(order: Order, event_type: str) -> OutboxEvent:
    return OutboxEvent.objects.get(payload__data__order_id=str(order.id), event_type=event_type)


def _die(row: OutboxEvent, error: str, failed_at: datetime) -> OutboxEvent:
    OutboxEvent.objects.filter(id=row.id).update(status=DEAD, attempts=5, last_error=error, failed_at=failed_at)
    row.refresh_from_db()
    return row


def _dead_rows() -> dict[str, list[OutboxEvent]]:
    """Three customers' new orders refused as too big (Ada's with three more orders waiting
    behind), two cancellations refused for an ACL on order.cancelled (Margaret's with an order
    behind), over the last two hours; and a customer whose events flow."""
    now = timezone.now()
    big = [
        _die(
            _event(OrderFactory.create(user_id=key), "order.created"), TOO_BIG.format(size), now - timedelta(minutes=m)
        )
        for key, size, m in (("ada", 2_000_001, 120), ("grace", 1_500_000, 45), ("linus", 1_048_577, 5))
    ]
    denied = []
    for n, key in enumerate(("margaret", "barbara")):
        order = OrderFactory.create(user_id=key)
        order_cancel(order_id=order.id, reason="changed my mind", changed_by="test")
        OutboxEvent.objects.filter(id=_event(order, "order.created").id).update(status=PUBLISHED, published_at=now)
        denied.append(_die(_event(order, "order.cancelled"), DENIED.format(n), now))
    waiting = [_event(OrderFactory.create(user_id=key), "order.created") for key in ("ada", "ada", "ada", "margaret")]
    OrderFactory.create(user_id="alan")
    return {"big": big, "denied": denied, "waiting": waiting}


def _group_id(cause: str) -> str:
    return next(g.group_id for g in selectors.outbox_dead_groups().groups if g.fingerprint == cause)


def test_staff_see_dead_rows_by_cause_and_requeue_a_whole_group(browser, live_server, screenshot):
    # given dead rows of two causes, and an operator who may requeue (change) but not discard
    rows = _dead_rows()
    group_id = _group_id(TOO_BIG_CAUSE)
    operator = _staff("operator", "view_outboxevent", "change_outboxevent")
    log_in(browser, live_server.url, "operator")

    # when they open the outbox admin and follow "Dead rows by cause"
    browser.get(f"{live_server.url}/admin/outbox/outboxevent/")
    element(browser, "#outbox-dead-groups-link").click()
    element(browser, "#dead-groups")
    screenshot("admin-outbox-dead-groups")

    # then one line per cause, the largest first, with its rows, topics and a sample
    assert texts(browser, "#dead-groups td.dead-cause") == [TOO_BIG_CAUSE, DENIED_CAUSE]
    assert texts(browser, "#dead-groups td.dead-count") == ["3", "2"]
    assert texts(browser, "#dead-groups td.dead-topics") == ["order.created", "order.cancelled"]
    sample = element(browser, f"#dead-group-{group_id} td.dead-sample").text
    assert sample.startswith(f"{rows['big'][2].id}: MessageSizeTooLargeError: [Error 10]")
    # and requeue only: discarding needs the delete permission
    assert not browser.find_elements(By.CSS_SELECTOR, "button.dead-discard")

    # when they requeue the too-big group
    browser.find_element(By.CSS_SELECTOR, f"#dead-group-{group_id} button.dead-requeue").click()
    element(browser, "ul.messagelist")
    screenshot("admin-outbox-dead-groups-requeued")

    # then its three rows are pending again from a fresh start, each logged; the other cause stays
    assert admin_messages(browser) == [f"Requeued 3 dead events of group {group_id[:8]}."]
    assert texts(browser, "#dead-groups td.dead-cause") == [DENIED_CAUSE]
    requeued = OutboxEvent.objects.filter(id__in=[row.id for row in rows["big"]])
    assert {(row.status, row.attempts, row.last_error) for row in requeued} == {("pending", 0, "")}
    logged = LogEntry.objects.filter(user=operator).order_by("object_id").values_list("object_id", flat=True)
    assert list(logged) == sorted(str(row.id) for row in rows["big"])


def test_staff_discard_a_whole_group_after_confirming(browser, live_server, screenshot):
    rows = _dead_rows()
    group_id = _group_id(DENIED_CAUSE)
    _staff("discarder", "view_outboxevent", "change_outboxevent", "delete_outboxevent")
    log_in(browser, live_server.url, "discarder")
    browser.get(f"{live_server.url}/admin/outbox/outboxevent/dead-groups/")

    # when they press "Discard all" on the ACL group, they are asked first
    element(browser, f"#dead-group-{group_id} button.dead-discard").click()
    question = element(browser, "#dead-discard-question").text
    screenshot("admin-outbox-dead-group-discard")
    assert question.startswith("Discard (delete, never send) the 2 dead rows of this cause?")
    assert OutboxEvent.objects.filter(status=DEAD).count() == 5

    # and when they confirm, the group's rows are gone and the rows behind them may go
    element(browser, "#dead-discard-confirm").click()
    element(browser, "ul.messagelist")
    assert admin_messages(browser) == [f"Discarded 2 dead events of group {group_id[:8]}."]
    assert not OutboxEvent.objects.filter(id__in=[row.id for row in rows["denied"]]).exists()
    assert OutboxEvent.objects.filter(status=DEAD).count() == 3


def test_staff_see_the_keys_dead_rows_block_and_what_waits_behind_each(browser, live_server, screenshot):
    rows = _dead_rows()
    _staff("viewer", "view_outboxevent")
    log_in(browser, live_server.url, "viewer")

    browser.get(f"{live_server.url}/admin/outbox/outboxevent/")
    element(browser, "#outbox-blocked-keys-link").click()
    element(browser, "#blocked-keys")
    screenshot("admin-outbox-blocked-keys")

    assert element(browser, "#blocked-keys-total").text == "5 keys blocked."
    assert texts(browser, "#blocked-keys td.blocked-key-key") == ["ada", "margaret", "grace", "linus", "barbara"]
    assert texts(browser, "#blocked-keys td.blocked-key-waiting") == ["3", "1", "0", "0", "0"]
    assert texts(browser, "#blocked-keys td.blocked-key-row")[0] == str(rows["big"][0].id)
    assert re.search(r"\(2\shours ago\)$", element(browser, "#blocked-keys tbody tr td.blocked-key-since").text)


def test_the_operations_page_shows_the_causes_and_the_blocked_keys(browser, live_server, screenshot):
    _dead_rows()
    _staff("ops", "view_outboxevent")
    log_in(browser, live_server.url, "ops")

    browser.get(f"{live_server.url}/admin/operations/")
    element(browser, "#ops-dead-groups")
    screenshot("admin-operations-dead-rows")

    assert texts(browser, "#ops-dead-groups td.ops-dead-group-count") == ["3", "2"]
    assert element(browser, "#ops-blocked-keys h2").text == "Blocked keys: 5"
    assert texts(browser, "#ops-blocked-keys td.ops-blocked-key-waiting") == ["3", "1", "0", "0", "0"]
    element(browser, "#ops-dead-groups-link").click()
    element(browser, "#dead-groups")
