"""Deep paging is bounded: `skip` stops at MAX_SKIP, deeper pages follow a keyset
cursor in `next`, and `count` never counts more than COUNT_EXACT_LIMIT rows."""

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.tests.factories import OrderFactory
from orders_project.api import pagination
from tests.support.api import ORDERS_URL

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


def _ids(body):
    return [order["id"] for order in body["data"]]


def test_skip_beyond_the_cap_is_refused_pointing_at_next_links(staff_client):
    response = staff_client.get(ORDERS_URL, {"skip": pagination.MAX_SKIP + 1})

    assert response.status_code == 400
    assert response.json()["details"] == {
        "skip": [f"Ensure this value is less than or equal to {pagination.MAX_SKIP}."]
    }


def test_following_next_links_past_the_skip_cap_walks_every_order_once_newest_first(staff_client, monkeypatch):
    monkeypatch.setattr(pagination, "MAX_SKIP", 4)
    # given 13 orders, several created at the same instant (the cursor must break ties by id)
    times = [T0 + dt.timedelta(minutes=n // 3) for n in range(13)]
    orders = [OrderFactory.create(created_at=moment, items=[]) for moment in times]
    expected = [str(o.id) for o in sorted(orders, key=lambda o: (o.created_at, o.id), reverse=True)]

    # when a client follows `next` from the first page, 3 at a time
    seen, links = [], []
    url = f"{ORDERS_URL}?limit=3"
    while url:
        body = staff_client.get(url).json()
        seen += _ids(body)
        links.append(body["next"])
        url = body["next"]

    # then every order came exactly once, in order; skip links until the cap, cursor links after
    assert seen == expected
    assert "skip=3" in links[0] and "cursor=" not in links[0]
    assert all("cursor=" in link and "skip=" not in link for link in links[2:-1])
    assert links[-1] is None


def test_a_cursor_page_has_no_previous_link_and_keeps_filters(staff_client):
    orders = [OrderFactory.create(created_at=T0 + dt.timedelta(minutes=n), items=[]) for n in range(4)]
    first = staff_client.get(ORDERS_URL, {"limit": 2, "status": "pending"}).json()
    cursor = pagination.cursor_encode(orders[2].created_at, orders[2].id)

    page = staff_client.get(ORDERS_URL, {"cursor": cursor, "limit": 2, "status": "pending"}).json()

    assert _ids(page) == [str(orders[1].id), str(orders[0].id)]
    assert page["previous"] is None
    assert page["next"] is None
    assert first["count"] == page["count"] == 4


@pytest.mark.parametrize(
    ("params", "details"),
    [
        ({"cursor": "not-a-cursor"}, {"cursor": ["Not a cursor from this API's `next` link."]}),
        ({"cursor": "WyJ4IiwgInkiXQ"}, {"cursor": ["Not a cursor from this API's `next` link."]}),  # ["x", "y"]
        (
            {"cursor": pagination.cursor_encode(T0, uuid.UUID(int=1)), "skip": 5},
            {"skip": ["Give either skip or cursor, not both."]},
        ),
    ],
)
def test_bad_cursors_are_400_naming_the_parameter(staff_client, params, details):
    response = staff_client.get(ORDERS_URL, params)

    assert response.status_code == 400
    assert response.json()["details"] == details


def test_count_reads_at_most_the_exact_limit_and_estimates_beyond(staff_client, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_EXACT_LIMIT", 5)
    for n in range(8):
        OrderFactory.create(created_at=T0 + dt.timedelta(minutes=n), items=[])

    with CaptureQueriesContext(connection) as queries:
        body = staff_client.get(ORDERS_URL, {"limit": 2}).json()

    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) == 1
    assert "LIMIT 6" in counts[0]
    # above the limit the planner's estimate is reported, never less than limit + 1
    assert body["count"] >= 6
    assert len(body["data"]) == 2
