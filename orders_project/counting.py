"""Counting rows without scanning a whole table: one home for the API's list
count and the admin's paginator.

Up to `limit` rows the count is exact (one COUNT over a LIMIT-ed subquery, a
few milliseconds at 10,000 rows); above it, PostgreSQL's planner estimate,
never less than limit + 1. A table of millions is then never counted on every
page view.
"""

import json
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet

EXACT_LIMIT = 10_000


def count_bounded(queryset: QuerySet[Any], *, limit: int = EXACT_LIMIT) -> int:
    bounded = queryset.order_by()[: limit + 1].count()
    if bounded <= limit:
        return bounded
    return _estimate(json.loads(queryset.order_by().explain(format="json")), limit=limit)


def count_bounded_sql(*, from_where: str, params: Sequence[Any], limit: int = EXACT_LIMIT) -> int:
    """count_bounded() of the rows of `SELECT 1 FROM <from_where>` (a FROM and WHERE in plain
    SQL with their parameters), for a hot read that does not compile a queryset."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM {from_where} LIMIT {int(limit) + 1}) bounded", params)
        (bounded,) = cursor.fetchone()
        if bounded <= limit:
            return int(bounded)
        cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {from_where}", params)
        (plan,) = cursor.fetchone()  # FORMAT JSON answers a json column, which psycopg loads
    return _estimate(plan, limit=limit)


def _estimate(plan: Any, *, limit: int) -> int:
    """The planner's row estimate from EXPLAIN's JSON plan, never less than limit + 1 (the
    exact count already found more)."""
    return max(int(plan[0]["Plan"]["Plan Rows"]), limit + 1)


class BoundedCountPaginator(Paginator):
    """Admin changelist paginator whose page count rests on count_bounded()."""

    @cached_property
    def count(self) -> int:
        if isinstance(self.object_list, QuerySet):
            return count_bounded(self.object_list)
        return len(self.object_list)
