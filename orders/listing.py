"""The order list's pages, and the read of one order, in plain SQL already in the API's representation.

A list page is the API's hottest read. Through the ORM a page of 100 spent most of its
CPU outside the database: compiling the page's and the count's querysets, loading five
timestamps, a date and a Decimal per order into Python objects only to format them
back into text, and walking the rows. Here PostgreSQL writes each column in the text
the API answers (RFC 3339 in UTC with microseconds, money with its two places, ids as
text) and a row becomes its representation by naming its columns.

orders/tests/test_representation.py holds a page's bytes to DRF's generic walk of the
same orders, orders/tests/test_listing.py the WHERE to OrderFilter's queryset for every
scope and filter, and test_api_paging.py and test_api_list_hostile.py the paging.
"""

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection

from orders.models import Order, OrderItem
from orders_project.api.pagination import Position
from orders_project.counting import count_bounded_sql


def _utc_text(column: str) -> str:
    """`column` (a timestamptz) as the API's DATETIME_FORMAT writes it ("%Y-%m-%dT%H:%M:%S.%fZ"),
    whatever the session's TimeZone and DateStyle."""
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


# OrderSerializer's fields, in its order, each as the SQL that writes it as the API does.
# `items` is a placeholder the page's item query fills; numeric(18,2) and (10,2) print
# their two places as DecimalField does (COERCE_DECIMAL_TO_STRING).
ORDER_COLUMNS: dict[str, str] = {
    "id": "o.id::text",
    "user_id": "o.user_id",
    "status": "o.status",
    "currency": "o.currency",
    "total_amount": "o.total_amount::text",
    "shipping_address": "o.shipping_address",
    "items": "NULL",
    "payment_id": "o.payment_id",
    "tracking_number": "o.tracking_number",
    "carrier": "o.carrier",
    "estimated_delivery": "to_char(o.estimated_delivery, 'YYYY-MM-DD')",
    "created_at": _utc_text("o.created_at"),
    "updated_at": _utc_text("o.updated_at"),
    "confirmed_at": _utc_text("o.confirmed_at"),
    "shipped_at": _utc_text("o.shipped_at"),
    "cancelled_at": _utc_text("o.cancelled_at"),
    "cancel_reason": "o.cancel_reason",
    "version": "o.version",
}
_FIELDS = tuple(ORDER_COLUMNS)
_SELECT = ", ".join(ORDER_COLUMNS.values())


@dataclass(frozen=True)
class OrderListFilters:
    """The list's filters once validated (orders.api.filters); None filters nothing."""

    status: str | None = None
    user_id: str | None = None
    created_after: dt.datetime | None = None  # created_at >= it
    created_before: dt.datetime | None = None  # created_at < it
    order_id: uuid.UUID | None = None  # one order (the detail's read, not a list filter)


class OrderListing:
    """The orders one caller's list shows, newest first (created_at, then id, both descending:
    the order every list index holds), as SkipLimitPagination pages them."""

    def __init__(self, *, customer_id: str | None, any_customer: bool, filters: OrderListFilters) -> None:
        conditions: list[str] = []
        self._params: list[Any] = []
        if not any_customer and customer_id is None:
            conditions.append("FALSE")  # a client bound to no customer sees no order
        elif not any_customer:
            conditions.append("o.user_id = %s")
            self._params.append(customer_id)
        for value, condition in (
            (filters.status, "o.status = %s"),
            (filters.user_id, "o.user_id = %s"),
            (filters.created_after, "o.created_at >= %s"),
            (filters.created_before, "o.created_at < %s"),
            (filters.order_id, "o.id = %s"),
        ):
            if value is not None:
                conditions.append(condition)
                self._params.append(value)
        self._from_where = f"{Order._meta.db_table} o WHERE {' AND '.join(conditions) or 'TRUE'}"

    def count_bounded(self, *, limit: int) -> int:
        return count_bounded_sql(from_where=self._from_where, params=self._params, limit=limit)

    def rows(self, *, skip: int, limit: int, after: Position | None) -> list[dict[str, Any]]:
        """Up to `limit` orders in their API representation, items included, from `skip` rows
        down or (with `after`) right after that position."""
        sql, params = f"SELECT {_SELECT} FROM {self._from_where}", list(self._params)
        if after is not None:
            # The created_at <= is implied by the OR, and stated so that PostgreSQL starts the
            # index scan at the position instead of filtering every newer row (41 ms at 125,000 deep).
            sql += " AND (o.created_at < %s OR (o.created_at = %s AND o.id < %s)) AND o.created_at <= %s"
            params += [after[0], after[0], after[1], after[0]]
        sql += " ORDER BY o.created_at DESC, o.id DESC OFFSET %s LIMIT %s"
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, skip, limit])
            page = [dict(zip(_FIELDS, row, strict=True)) for row in cursor.fetchall()]
            if page:
                items = _items_of(cursor, [order["id"] for order in page])
                for order in page:
                    order["items"] = items[order["id"]]  # in its place: a dict keeps a key's first position
        return page

    @staticmethod
    def position(row: dict[str, Any]) -> Position:
        return dt.datetime.fromisoformat(row["created_at"]), uuid.UUID(row["id"])


def _items_of(cursor: Any, order_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The items of these orders (ids as text) as OrderItemSerializer represents them, oldest
    first; one query with the ids as one array parameter."""
    by_order: dict[str, list[dict[str, Any]]] = {order_id: [] for order_id in order_ids}
    cursor.execute(
        f"SELECT order_id::text, product_id, quantity, price::text FROM {OrderItem._meta.db_table}"
        " WHERE order_id = ANY(%s::uuid[]) ORDER BY id",
        [order_ids],
    )
    for order_id, product_id, quantity, price in cursor.fetchall():
        by_order[order_id].append({"product_id": product_id, "quantity": quantity, "price": price})
    return by_order
