"""The list's plain filter reading (orders.api.filters.order_filters_plain) reads what
OrderFilter reads, and leaves everything else, every refusal included, to OrderFilter."""

import itertools

import pytest
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from orders.api.filters import order_filters_judged, order_filters_plain, order_list_filters
from orders.listing import OrderListFilters

VALUES = {
    "status": ["pending", "shipped", "PENDING", "", " pending", "unknown", "pending\x00"],
    "user_id": ["user-7", "u", "x" * 64, "x" * 65, "", " user-7", "user-7 ", "\t", "us\x00er", "ü-☃", "a b"],
    "created_after": ["2026-01-01T00:00:00Z", "yesterday"],
    "limit": ["100", "0"],
    "other": ["1"],
}


def _read(read, query: list[tuple[str, str]]):
    """The filters `read` gives for this query string, or the error it raises."""
    params = Request(APIRequestFactory().get("/", query)).query_params
    try:
        return read(params)
    except ValidationError as exc:
        return ("refused", exc.detail)


def _queries():
    singles = [[(name, value)] for name, values in VALUES.items() for value in values]
    pairs = [
        [("status", status), ("user_id", user_id)]
        for status, user_id in itertools.product(VALUES["status"], VALUES["user_id"])
    ]
    repeated = [[("status", "pending"), ("status", "shipped")], [("user_id", "a"), ("user_id", "b")]]
    paging = [[("user_id", "user-7"), ("limit", "100"), ("skip", "5"), ("cursor", "x")]]
    return [[], *singles, *pairs, *repeated, *paging]


@pytest.mark.parametrize("query", _queries(), ids=str)
def test_the_plain_reading_gives_what_orderfilter_reads_or_leaves_the_query_to_it(query):
    judged = _read(order_filters_judged, query)
    plain = _read(order_filters_plain, query)
    if plain is not None:
        assert plain == judged
    assert _read(order_list_filters, query) == judged


def test_plain_queries_skip_orderfilter_and_others_do_not():
    request = Request(APIRequestFactory().get("/", {"status": "pending", "user_id": "user-7", "limit": "100"}))
    assert order_filters_plain(request.query_params) == OrderListFilters(status="pending", user_id="user-7")
    for query in ({"user_id": " user-7"}, {"status": "PENDING"}, {"created_after": "2026-01-01T00:00:00Z"}):
        assert order_filters_plain(Request(APIRequestFactory().get("/", query)).query_params) is None
