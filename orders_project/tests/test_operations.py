"""The admin's operations page (orders_project/operations): who may see it, what it
costs, and what it shows when the consumer is silent or Redis is down."""

import functools
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from orders.tests.factories import OrderFactory
from orders_project.errors import ServiceUnavailableError
from orders_project.operations.chart import HEIGHT, minute_chart
from orders_project.operations.views import duration_text
from outbox.audit import AuditResult, AuditRow, Finding
from outbox.audit_window import LAST_FINDING_KEY, LAST_KEY, report_store
from outbox.models import OutboxEvent, OutboxStatus
from outbox.storage import outbox_storage
from outbox.tests.scratch import SCRATCH, day, execute, partitioned_scratch, plain_scratch

pytestmark = pytest.mark.django_db

URL = "/admin/operations/"


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_user(username="ops", password="x", is_staff=True))
    return client


def test_anyone_but_staff_is_sent_to_the_admin_login(client):
    anonymous = client.get(URL)
    client.force_login(User.objects.create_user(username="customer", password="x"))
    customer = client.get(URL)

    assert anonymous.status_code == customer.status_code == 302
    assert anonymous["Location"] == customer["Location"] == "/admin/login/?next=/admin/operations/"


def test_the_page_counts_nothing_unbounded_and_scans_no_whole_table(staff_client):
    OrderFactory.create_batch(3)

    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(URL)

    assert response.status_code == 200
    sql = [query["sql"].upper() for query in queries.captured_queries]
    counts = [query for query in sql if "COUNT(" in query]
    # bounded counts (a LIMIT-ed subquery) or per-minute counts over a time range
    assert all("LIMIT" in query or ">=" in query for query in counts), counts
    # 12 for the page's own reads, 3 for the storage and horizon catalogs (the third,
    # a bounded count of the DEFAULT partition, only when the outbox is partitioned)
    assert len(sql) <= 15, sql


def test_a_silent_consumer_and_redis_down_are_said_plainly(staff_client, monkeypatch):
    silent = staff_client.get(URL).content.decode()

    def down(**kwargs):
        raise ServiceUnavailableError("Redis (the user cache) is unavailable.")

    monkeypatch.setattr("users_cache.services.consumer_status_get", down)
    unavailable = staff_client.get(URL).content.decode()

    assert "No consumer of group order-service has reported in the last minute." in silent
    assert "Cannot read the consumer" in unavailable
    assert "Redis (the user cache) is unavailable." in unavailable


def test_the_chart_has_a_bar_per_minute_scaled_to_the_busiest():
    end = datetime(2026, 1, 1, 12, 30, 40, tzinfo=UTC)
    counts = {datetime(2026, 1, 1, 12, 30, tzinfo=UTC): 4, datetime(2026, 1, 1, 12, 28, tzinfo=UTC): 2}

    chart = minute_chart(title="t", counts=counts, end=end, minutes=5)

    assert [bar.count for bar in chart.bars] == [0, 0, 2, 0, 4]
    assert [bar.height for bar in chart.bars] == [0.0, 0.0, HEIGHT / 2, 0.0, HEIGHT]
    assert (chart.start, chart.end, chart.total, chart.peak) == (
        end.replace(minute=26, second=0),
        end.replace(second=0),
        6,
        4,
    )
    assert chart.bars[1].x - chart.bars[0].x == 120.0


def test_durations_read_as_people_write_them():
    assert [duration_text(s) for s in (None, 7, 307, 7507.9, -3)] == ["-", "7s", "5m 7s", "2h 5m 7s", "0s"]
    assert duration_text(timedelta(minutes=1).total_seconds()) == "1m 0s"


def _reading(table: str):
    """outbox_storage reading `table` in place of the outbox's (a real table, no mock)."""
    return functools.partial(outbox_storage, table=table)


def test_a_plain_outbox_table_shows_its_size_and_no_partitions(staff_client, monkeypatch):
    # given a plain table of the outbox's columns, read in place of the outbox's own
    plain_scratch()
    monkeypatch.setattr("orders_project.operations.views.outbox_storage", _reading(SCRATCH))

    page = staff_client.get(URL).content.decode()

    assert '<td id="ops-storage-partitions">none (one plain table)</td>' in page
    assert 'id="ops-storage-past-retention"' not in page
    assert '<span id="ops-storage-table">0\xa0bytes</span> / <span id="ops-storage-indexes">8.0\xa0KB</span>' in page


def test_partitions_past_retention_and_rows_in_default_are_named(staff_client, monkeypatch):
    # given a table of the outbox's partitioned shape (a scratch one, read in place of the
    # outbox's own), with a row in DEFAULT, and 7 days of retention
    partitioned_scratch()
    execute(f"INSERT INTO {SCRATCH} VALUES (1, 'pending', '2999-01-01 00:00:00+00')")
    monkeypatch.setattr("orders_project.operations.views.outbox_storage", _reading(SCRATCH))

    with override_settings(OUTBOX_RETENTION_DAYS=7):
        page = staff_client.get(URL).content.decode()

    assert '<td id="ops-storage-partitions">6</td>' in page
    past = sorted(f"{SCRATCH}_{suffix}" for suffix in ("legacy", f"p{day(10)}", f"p{day(8)}"))
    # the partitions are dated before NOW (the test's fixed day), so all three are past retention today too
    assert f'<td class="ops-warn" id="ops-storage-past-retention">{", ".join(past)}</td>' in page
    assert '<td class="ops-warn" id="ops-storage-default-rows">1</td>' in page


@pytest.mark.django_db(transaction=True)
def test_a_session_idle_in_a_transaction_is_named_as_the_oldest_transaction(staff_client):
    holder = connection.get_new_connection(connection.get_connection_params())
    try:
        holder.autocommit = False
        with holder.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # its snapshot lasts
            cursor.execute("SET application_name = 'forgotten-psql'")
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()

        page = staff_client.get(URL).content.decode()

        assert re.search(
            rf'<div class="ops-horizon-holder">\d+s: pid {pid} \(forgotten-psql\), idle in transaction, \d+ xids</div>',
            page,
        ), page
    finally:
        holder.close()


def _audit_result(*, missing: int) -> AuditResult:
    row = AuditRow(
        id=41,
        event_id="6d1f0c1e-0000-4000-8000-000000000041",
        key="user123",
        topic="order.created",
        partition=2,
        offset=18443,
        published_at=datetime(2026, 12, 7, 3, 0, tzinfo=UTC),
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        order_id=None,
        order_version=None,
        replayed=False,
    )
    findings = [Finding("missing", row, "no record at this offset")] * missing
    return AuditResult(checked=1000, missing=missing, duplicates=3, findings=findings)


def test_the_delivery_audit_shows_its_last_run_and_its_last_finding(staff_client):
    # given a run that found a row missing, then a clean run
    cache.delete_many([LAST_KEY, LAST_FINDING_KEY])
    before = staff_client.get(URL).content.decode()
    report_store(_audit_result(missing=1), now=datetime.now(UTC) - timedelta(minutes=2), cursor=None)
    report_store(_audit_result(missing=0), now=datetime.now(UTC), cursor=None)

    page = staff_client.get(URL).content.decode()

    assert "No run reported yet (beat runs it every 60 s)." in before
    assert re.search(r'id="ops-audit-last">\d+s ago: 1000 checked<', page)
    assert re.search(r'id="ops-audit-findings">0 / 0 / 0<', page)
    assert "3 (0.30 %)" in page
    assert "1 missing, 0 misplaced, 0 out of order." in page
    # the finding's lines name a customer (the key): only for staff who may view the outbox
    assert "missing: row 41 " not in page
    staff_client.force_login(
        User.objects.create_user(username="ops-viewer", password="x", is_staff=True, is_superuser=True)
    )
    assert "missing: row 41 event 6d1f0c1e" in staff_client.get(URL).content.decode()


def test_dead_rows_by_cause_and_blocked_keys_are_shown_bounded_and_only_to_who_may_view_the_outbox(staff_client):
    # given two orders' events dead of one cause, one with another order's event waiting behind it
    for user_id, size in (("ada", 2000001), ("grace", 1500000)):
        OutboxEvent.objects.filter(payload__data__order_id=str(OrderFactory.create(user_id=user_id).id)).update(
            status=OutboxStatus.DEAD, last_error=f"MessageSizeTooLargeError: {size} bytes"
        )
    OrderFactory.create(user_id="ada")

    # when a staff member without the outbox's view permission opens the page
    hidden = staff_client.get(URL).content.decode()
    # and one with it
    viewer = User.objects.create_user(username="viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_outboxevent"))
    staff_client.force_login(viewer)
    with CaptureQueriesContext(connection) as queries:
        shown = staff_client.get(URL).content.decode()

    # then only the second sees the cause and the blocked keys, read with bounded queries
    assert 'id="ops-dead-groups"' not in hidden and 'id="ops-blocked-keys"' not in hidden
    assert "MessageSizeTooLargeError: &lt;n&gt; bytes" in shown
    assert "Blocked keys: 2</h2>" in shown
    assert re.search(r'<td>ada</td><td class="ops-blocked-key-waiting">1</td>', shown)
    counts = [query["sql"].upper() for query in queries.captured_queries if "COUNT(" in query["sql"].upper()]
    assert all("LIMIT" in query or ">=" in query for query in counts), counts
