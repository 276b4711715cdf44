"""Counting rows without scanning a whole table: one home for the API's list
count and the admin's paginator.

Up to `limit` rows the count is exact (one COUNT over a LIMIT-ed subquery, a
few milliseconds at 10,000 rows); above it, PostgreSQL's planner estimate,
never less than limit + 1. A table of millions is then never counted on every
page view.
"""

import json
from functools import cached_property
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet

EXACT_LIMIT = 10_000


def count_bounded(queryset: QuerySet[Any], *, limit: int = EXACT_LIMIT) -> int:
    bounded = queryset.order_by()[: limit + 1].count()
    if bounded <= limit:
        return bounded
    plan = json.loads(queryset.order_by().explain(format="json"))
    return max(int(plan[0]["Plan"]["Plan Rows"]), limit + 1)


class BoundedCountPaginator(Paginator):
    """Admin changelist paginator whose page count rests on count_bounded()."""

    @cached_property
    def count(self) -> int:
        if isinstance(self.object_list, QuerySet):
            return count_bounded(self.object_list)
        return len(self.object_list)
