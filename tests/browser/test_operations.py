"""The admin's operations page, in Chromium: the service's health at a glance."""

import re
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.utils import timezone
from selenium.webdriver.common.by import By

from orders.tests.factories import OrderFactory
from outbox.models import OutboxEvent, OutboxStatus
from tests.support.browser import PASSWORD, element, log_in, texts
from tests.support.chromium import requested_hosts
from users_cache.status import status_key, status_write

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_open_the_operations_page_and_see_backlog_due_orders_consumer_and_the_last_hour(
    browser, live_server, screenshot
):
    # given two orders long past their confirm delay (one event relayed, one dead), a new
    # order (its event pending), and a consumer that reported a lag of 7 a moment ago
    now = timezone.now()
    late = [OrderFactory.create(created_at=now - timedelta(minutes=5)) for _ in range(2)]
    OrderFactory.create()
    relayed, dead = (OutboxEvent.objects.get(payload__data__order_id=str(order.id)) for order in late)
    OutboxEvent.objects.filter(pk=relayed.pk).update(status=OutboxStatus.PUBLISHED, published_at=now)
    OutboxEvent.objects.filter(pk=dead.pk).update(
        status=OutboxStatus.DEAD, attempts=5, last_error="KafkaTimeoutError: Failed to update metadata after 10.0 secs."
    )
    event_ms = int((time.time() - 90) * 1000)
    report = {"lag": 7, "last_event_ms": event_ms, "last_handled_at": time.time() - 2, "reported_at": time.time()}
    status_write(key=status_key(settings.KAFKA_CONSUMER_GROUP_ID), member="consumer-0:1", report=report)
    ops = User.objects.create_user(username="ops", password=PASSWORD, is_staff=True)
    ops.user_permissions.add(Permission.objects.get(codename="view_outboxevent"))

    # and a session left idle in a transaction that holds a snapshot (vacuum's horizon)
    holder = connection.get_new_connection(connection.get_connection_params())
    holder.autocommit = False
    with holder.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SET application_name = 'forgotten-psql'")
        cursor.execute("SELECT pg_backend_pid()")
        (holder_pid,) = cursor.fetchone()

    # when a staff member opens it from the admin's home page
    try:
        log_in(browser, live_server.url, "ops")
        browser.get(f"{live_server.url}/admin/")
        element(browser, "#operations-link a").click()
        element(browser, "#ops-charts")
        screenshot("admin-operations")
        horizon = texts(browser, "#ops-horizon .ops-horizon-holder")
    finally:
        holder.close()

    # then it shows the outbox, the lifecycle, the consumer, the dead row and the charts
    assert element(browser, "#ops-outbox-pending").text == "1"
    assert element(browser, "#ops-outbox-oldest").text.endswith("s")
    assert element(browser, "#ops-outbox-dead").text == "1"
    # the outbox's storage and the session holding the horizon
    assert re.fullmatch(r"\d+(\.\d)? (KB|MB) / \d+(\.\d)? (KB|MB)", element(browser, "#ops-storage-size").text)
    assert any(
        re.fullmatch(rf"\d+s: pid {holder_pid} \(forgotten-psql\), idle in transaction, \d+ xids", line)
        for line in horizon
    ), horizon
    assert element(browser, "#ops-due-confirm").text == "2"
    assert element(browser, "#ops-due-ship").text == "0"
    assert element(browser, "#ops-consumer-lag").text == "7"
    assert re.search(r"\(1m 3\ds ago\)$", element(browser, "#ops-consumer-last-event").text)
    assert texts(browser, "#ops-dead-rows td.ops-error") == [
        "KafkaTimeoutError: Failed to update metadata after 10.0 secs."
    ]
    headings = texts(browser, "#ops-charts h3")
    assert headings == [
        "Orders created per minute: 3 in all, at most 2 in a minute",
        "Events relayed to Kafka per minute: 1 in all, at most 1 in a minute",
    ]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#ops-charts svg rect")) == 120
    # and nothing came from another host (no script, font or image from a CDN)
    assert requested_hosts(browser) == {urlsplit(live_server.url).netloc}


def test_a_user_who_is_not_staff_is_sent_to_the_admin_login(browser, live_server):
    User.objects.create_user(username="customer", password=PASSWORD)
    log_in(browser, live_server.url, "customer", path="/api-auth/login/")

    browser.get(f"{live_server.url}/admin/operations/")

    element(browser, "#login-form")
    assert browser.current_url.startswith(f"{live_server.url}/admin/login/?next=/admin/operations/")
