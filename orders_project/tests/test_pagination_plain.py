"""The paging parameters' plain reading (page_params_plain) gives what PageParamsSerializer
validates the same query to, and leaves everything else, every refusal included, to it."""

import datetime as dt
import itertools
import uuid

import pytest
from django.http import QueryDict

from orders_project.api.pagination import MAX_LIMIT, MAX_SKIP, PageParamsSerializer, cursor_encode, page_params_plain

CURSOR = cursor_encode(dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC), uuid.UUID(int=7))
NUMBERS = [None, "0", "1", "5", "100", str(MAX_LIMIT + 1), str(MAX_SKIP), str(MAX_SKIP + 1), "007", "5.0", " 5", "-1",
           "", "1e2", "٣", "9" * 7]  # fmt: skip
CURSORS = [None, CURSOR, CURSOR + "A", "", " ", "not-a-cursor"]


def _query(**given: list[str] | str | None) -> QueryDict:
    query = QueryDict(mutable=True)
    for name, value in given.items():
        if value is not None:
            query.setlist(name, value if isinstance(value, list) else [value])
    return query


def _serializer_reading(query: QueryDict):
    params = PageParamsSerializer(data=query)
    return dict(params.validated_data) if params.is_valid() else None


QUERIES = [
    *(_query(skip=skip, limit=limit) for skip, limit in itertools.product(NUMBERS, NUMBERS)),
    *(_query(skip=skip, cursor=cursor) for skip, cursor in itertools.product(["0", "3", None], CURSORS)),
    _query(limit=["5", "6"]),
    _query(cursor=[CURSOR, CURSOR]),
    _query(limit="5", status="pending"),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.urlencode())
def test_the_plain_reading_is_the_serializers_or_leaves_the_query_to_it(query):
    plain = page_params_plain(query)
    if plain is not None:
        assert plain == _serializer_reading(query)


def test_plain_queries_are_read_without_the_serializer():
    assert page_params_plain(_query(skip="10", limit="100")) == {"skip": 10, "limit": 100}
    with_cursor = page_params_plain(_query(limit="100", cursor=CURSOR))
    assert with_cursor is not None and with_cursor["cursor"][1] == uuid.UUID(int=7)
    assert page_params_plain(_query()) == {"skip": 0, "limit": 20}
    assert page_params_plain(_query(limit="0")) is None
