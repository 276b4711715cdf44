"""List parameters are untrusted input: whatever a client puts in them is a page or a 400 naming them, never a 500.

The keyset cursor above all: it is opaque to clients, but they hold it and can change it.
"""

import base64
import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orders.tests.factories import OrderFactory
from orders_project.api import pagination
from tests.support.api import ORDERS_URL

pytestmark = pytest.mark.django_db

NOT_A_CURSOR = {"cursor": ["Not a cursor from this API's `next` link."]}
ID = "00000000-0000-0000-0000-000000000001"


def _cursor(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        " ",  # whitespace: the same answer as any other non-cursor (was "may not be blank")
        "\t",
        _cursor(["2024-01-01T00:00:00+20:00", ID]),  # PostgreSQL takes offsets up to 15:59: was a DataError, 500
        _cursor(["2024-01-01T00:00:00-16:00", ID]),
        _cursor(["2024-01-01T00:00:00+05:00:30", ID]),  # an offset with seconds
        _cursor(["2024-01-01T00:00:00+05:00:00.5", ID]),
        _cursor(["2024-01-01T00:00:00", ID]),  # no offset
        _cursor(["0001-01-01T00:00:00+01:00", ID]),  # before the year 1 in UTC
        _cursor(["2024-01-01T00:00:00Z", "not-a-uuid"]),
        _cursor({"2024-01-01T00:00:00Z": 1, ID: 2}),  # two keys unpack like a pair
        _cursor(["2024-01-01T00:00:00Z", ID, "x"]),
        _cursor([20240101, ID]),
        _cursor([["2024-01-01T00:00:00Z"], ID]),
        _cursor("2024-01-01T00:00:00Z"),
        _cursor(None),
        base64.urlsafe_b64encode(json.dumps(["2024-01-01T00:00:00Z", ID]).encode("utf-16")).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe\x00garbage").decode(),
        _cursor(["2024-01-01T00:00:00Z", ID]) + "*!",  # non-alphabet characters (once silently dropped)
        _cursor(["2024-01-01T00:00:00Z", ID])[:-1] + "=",
        "é" * 10,
        "A" * 10_000,  # huge: refused before decoding
        _cursor([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
    ],
)
def test_a_tampered_cursor_is_400_on_cursor(staff_client, cursor):
    response = staff_client.get(ORDERS_URL, {"cursor": cursor})

    assert response.status_code == 400
    assert response.json()["details"] == NOT_A_CURSOR


def test_a_cursor_with_an_offset_postgresql_takes_names_the_same_moment_in_utc(staff_client):
    # given three orders a minute apart, and the middle one's position written at +05:30 and at -15:59
    t0 = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)
    orders = [OrderFactory.create(created_at=t0 + dt.timedelta(minutes=n), items=[]) for n in range(3)]
    middle = orders[1]
    in_utc = pagination.cursor_encode(middle.created_at, middle.id)

    pages = [
        staff_client.get(ORDERS_URL, {"cursor": cursor}).json()["data"]
        for cursor in (
            in_utc,
            _cursor(
                [
                    middle.created_at.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))).isoformat(),
                    str(middle.id),
                ]
            ),
            _cursor(
                [
                    middle.created_at.astimezone(dt.timezone(-dt.timedelta(hours=15, minutes=59))).isoformat(),
                    str(middle.id),
                ]
            ),
        )
    ]

    assert [[order["id"] for order in page] for page in pages] == [[str(orders[0].id)]] * 3


_offsets = st.timedeltas(min_value=-dt.timedelta(hours=24), max_value=dt.timedelta(hours=24)).filter(
    lambda offset: abs(offset) < dt.timedelta(hours=24)
)
_times = st.builds(
    lambda moment, offset: moment.replace(tzinfo=dt.timezone(offset)).isoformat(),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59)),
    _offsets,
)
_ids = st.one_of(st.uuids().map(str), st.text(max_size=40))
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
_positions = st.one_of(
    st.tuples(st.one_of(_times, st.text(max_size=40)), _ids).map(list),
    st.lists(st.one_of(_times, _ids, _json), max_size=4),
    _json,
)
_cursors = st.one_of(
    _positions.map(_cursor),
    st.binary(max_size=160).map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")),
    st.text(max_size=260),
)


@pytest.mark.fuzz
@given(cursor=_cursors)
@example(cursor=_cursor(["2024-01-01T00:00:00+20:00", ID]))
@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_cursor_is_a_page_or_a_400_on_cursor(staff_client, cursor):
    response = staff_client.get(ORDERS_URL, {"cursor": cursor, "limit": 1})

    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["details"] == NOT_A_CURSOR


_query_values = st.one_of(
    st.text(max_size=40),
    _cursors,
    _times,
    st.integers().map(str),
    st.sampled_from(["pending", "1e3", "-0", "0x10", "NaN", "9" * 30, "2024-01-01T00:00:00+24:00", "\x00"]),
)
_params = st.dictionaries(
    st.sampled_from(["status", "user_id", "created_after", "created_before", "skip", "limit", "cursor"]),
    _query_values,
)


@pytest.mark.fuzz
@given(params=_params)
@example(params={"created_before": "0156-09-18T16:26:51-18:44", "cursor": _cursor(["2024-01-01T00:00:00+20:00", ID])})
@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_list_parameters_are_a_page_or_a_400_naming_them(staff_client, params):
    response = staff_client.get(ORDERS_URL, params)

    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert set(response.json()["details"]) <= {*params, "non_field_errors"}, response.content
