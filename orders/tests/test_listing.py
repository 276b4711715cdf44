"""The list's plain SQL (orders.listing) finds, orders, pages and counts the orders that
OrderFilter's queryset over the caller's orders gives, for every scope and filter.

The API tests hold a page's bytes and its links; these hold the SQL's WHERE to the
ORM's meaning of each filter, so the two cannot drift apart."""

import datetime as dt
from typing import Any

import pytest
from django.http import QueryDict

from orders.api.filters import OrderFilter, order_filters_judged
from orders.listing import OrderListing
from orders.models import Order, OrderStatus
from orders.tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
CUSTOMERS = ["user-a", "user-b", "user-c"]

SCOPES: dict[str, dict[str, Any]] = {
    "any customer": {"customer_id": None, "any_customer": True},
    "bound to user-a": {"customer_id": "user-a", "any_customer": False},
    "bound to no one": {"customer_id": None, "any_customer": False},
}
QUERIES = [
    "",
    "status=pending",
    "user_id=user-b",
    "user_id=user-a&status=cancelled",
    "created_after=2026-05-01T12:00:05Z",
    "created_before=2026-05-01T14:00:07%2B02:00",
    "status=shipped&created_after=2026-05-01T12:00:02Z&created_before=2026-05-01T12:00:09Z",
    "user_id=nobody",
    "status=&user_id=",
]


@pytest.fixture
def orders() -> None:
    # 36 orders over three customers and four statuses, three to an instant (ties broken by id)
    statuses = list(OrderStatus)
    for n in range(36):
        OrderFactory.create(
            user_id=CUSTOMERS[n % 3],
            status=statuses[n % 4],
            created_at=T0 + dt.timedelta(seconds=n // 3),
            items=[],
        )


def _expected(scope: dict, query: str) -> list[str]:
    """What the ORM and OrderFilter answer: the ids, newest first."""
    caller = Order.objects.all() if scope["any_customer"] else Order.objects.of_customer(scope["customer_id"])
    filterset = OrderFilter(QueryDict(query), queryset=caller)
    assert filterset.is_valid()
    return [str(pk) for pk in filterset.qs.order_by("-created_at", "-id").values_list("id", flat=True)]


def _listing(scope: dict, query: str) -> OrderListing:
    return OrderListing(**scope, filters=order_filters_judged(QueryDict(query)))


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("scope", SCOPES.values(), ids=SCOPES.keys())
def test_a_listing_finds_and_counts_what_orderfilter_finds_newest_first(orders, scope, query):
    listing = _listing(scope, query)

    rows = listing.rows(skip=0, limit=100, after=None)

    assert [row["id"] for row in rows] == _expected(scope, query)
    assert listing.count_bounded(limit=100) == len(rows)


@pytest.mark.parametrize("query", ["", "status=confirmed", "user_id=user-c"])
def test_pages_by_skip_and_by_position_walk_every_order_once_in_order(orders, query):
    scope = SCOPES["any customer"]
    listing, expected = _listing(scope, query), _expected(scope, query)

    # by skip, pages of 4
    by_skip = [row["id"] for skip in range(0, 40, 4) for row in listing.rows(skip=skip, limit=4, after=None)]
    # by position, each page right after the last one's final row
    by_position, after = [], None
    while page := listing.rows(skip=0, limit=4, after=after):
        by_position += [row["id"] for row in page]
        after = listing.position(page[-1])

    assert by_skip == by_position == expected


def test_above_the_limit_the_count_is_an_estimate_never_below_limit_plus_one(orders):
    listing = _listing(SCOPES["any customer"], "")

    assert listing.count_bounded(limit=5) >= 6
    assert listing.count_bounded(limit=36) == 36
