"""`skip`/`limit` paging with the list shape of the API contract:

    {"count": N, "next": url|null, "previous": url|null, "data": [...]}

What a deep page costs is bounded, so paging cannot be used to load the database:

* `skip` goes up to MAX_SKIP. Past it (and whenever `cursor` is given) pages
  are found by keyset: `next` carries an opaque `cursor` naming the last row
  shown, and the next page starts right after it through the list's index,
  however deep. Cursor pages have no `previous` (forward only).
* `count` is exact up to COUNT_EXACT_LIMIT (one bounded COUNT over at most
  that many rows); above it, PostgreSQL's planner estimate (never below the
  limit + 1), so a list of millions does not scan them all on every page.

A bad `skip`, `limit` or `cursor` is a 400, not silently replaced by a default.
A list is paged through `paginate()`, given as a Pageable, newest first (created_at,
then id, both descending: a cursor names a row by the two). The order list's Pageable is
plain SQL (orders.listing): compiling querysets for each page cost more than its query.
"""

import base64
import datetime as dt
import json
import uuid
from typing import Any, Protocol

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Skipping N rows reads N rows: 10,000 costs a few milliseconds, a million does not.
MAX_SKIP = 10_000
# Counts are exact up to this many rows, estimated above (orders_project/counting.py).
COUNT_EXACT_LIMIT = 10_000
# A cursor this API makes is ~90 characters; anything longer is refused before decoding.
CURSOR_MAX_LENGTH = 200
# The largest UTC offset PostgreSQL accepts in a timestamptz.
_MOST_OFFSET = dt.timedelta(hours=15, minutes=59)


def cursor_encode(created_at: dt.datetime, pk: uuid.UUID) -> str:
    raw = json.dumps([created_at.astimezone(dt.UTC).isoformat(), str(pk)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(value: str) -> tuple[dt.datetime, uuid.UUID]:
    """The position named by a cursor, in UTC; ValueError for anything that is not a cursor.

    The cursor comes back from the client, so it is untrusted input: whatever it holds
    must be refused here, never reach PostgreSQL as a DataError (a 500). Python takes
    UTC offsets up to 23:59:59.999999, PostgreSQL only whole minutes up to 15:59 (so a
    cursor keeping `+20:00` was a 500): the time is converted to UTC, and an offset that
    PostgreSQL would refuse is refused too. The length is checked before any decoding.
    """
    if len(value) > CURSOR_MAX_LENGTH:
        raise ValueError("longer than any cursor this API makes")
    try:
        raw = base64.b64decode(value.encode("ascii") + b"=" * (-len(value) % 4), altchars=b"-_", validate=True)
        position = json.loads(raw.decode("utf-8"))  # bytes would let json guess UTF-16 or UTF-32
        if not (isinstance(position, list) and len(position) == 2 and all(isinstance(p, str) for p in position)):
            raise ValueError("not a [time, id] pair")
        moment = dt.datetime.fromisoformat(position[0])
        offset = moment.utcoffset()
        if offset is None or abs(offset) > _MOST_OFFSET or offset % dt.timedelta(minutes=1):
            raise ValueError(f"not a UTC offset PostgreSQL takes: {offset}")
        return moment.astimezone(dt.UTC), uuid.UUID(position[1])
    except OverflowError as exc:  # a moment before the year 1 or after 9999 in UTC
        raise ValueError(str(exc)) from exc


_NOT_A_CURSOR = "Not a cursor from this API's `next` link."


class CursorField(serializers.CharField):
    """One answer for anything that is not a cursor, a blank or whitespace value included
    (CharField would trim it and answer "may not be blank" instead)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trim_whitespace=False, error_messages={"blank": _NOT_A_CURSOR}, **kwargs)

    def to_internal_value(self, data: Any) -> tuple[dt.datetime, uuid.UUID]:  # type: ignore[override]  # a decoded cursor, not a str
        try:
            return cursor_decode(super().to_internal_value(data))
        except ValueError:
            raise serializers.ValidationError(_NOT_A_CURSOR) from None


class PageParamsSerializer(serializers.Serializer):
    skip = serializers.IntegerField(min_value=0, max_value=MAX_SKIP, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    cursor = CursorField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "cursor" in attrs and attrs["skip"]:
            raise serializers.ValidationError({"skip": ["Give either skip or cursor, not both."]})
        return attrs


def _plain_int(values: list[str], *, least: int, most: int) -> int | None:
    """The one value of a parameter as IntegerField(min_value, max_value) reads it, when it
    is plain digits within bounds; None otherwise."""
    if len(values) != 1 or not (0 < len(values[0]) <= 6 and values[0].isascii() and values[0].isdigit()):
        return None
    number = int(values[0])
    return number if least <= number <= most else None


def page_params_plain(params: QueryDict) -> dict[str, Any] | None:
    """What PageParamsSerializer validates the query to, when `skip`, `limit` and `cursor` are
    each absent or given once in the plain shape (digits within bounds, a cursor this API
    wrote, not both skip and cursor); None for anything else, which the serializer then
    judges. Never refuses: a None is not an error."""
    values: dict[str, Any] = {"skip": 0, "limit": DEFAULT_LIMIT}
    for name, bounds in (("skip", (0, MAX_SKIP)), ("limit", (1, MAX_LIMIT))):
        if name in params:
            number = _plain_int(params.getlist(name), least=bounds[0], most=bounds[1])
            if number is None:
                return None
            values[name] = number
    if "cursor" in params:
        given = params.getlist("cursor")
        if len(given) != 1 or values["skip"]:
            return None
        try:
            values["cursor"] = cursor_decode(given[0])
        except ValueError:
            return None
    return values


# A page position: the (created_at, id) of a row, as a keyset cursor names it.
Position = tuple[dt.datetime, uuid.UUID]


class Pageable(Protocol):
    """A list as SkipLimitPagination pages it: newest first, by created_at then id."""

    def count_bounded(self, *, limit: int) -> int:
        """Its rows, exact up to `limit`, an estimate above it (orders_project/counting.py)."""

    def rows(self, *, skip: int, limit: int, after: Position | None) -> list[Any]:
        """Up to `limit` rows from `skip` rows down, or (with `after`) right after that position."""

    def position(self, row: Any) -> Position:
        """A row's position, for the cursor of the page after it."""


class SkipLimitPagination(BasePagination):
    def paginate(self, listing: Pageable, request: Request) -> list[Any]:
        # The plain reading skips building the serializer's fields per request (deep copies);
        # anything else, every refusal included, is the serializer's (test_pagination_plain.py).
        values = page_params_plain(request.query_params)
        if values is None:
            params = PageParamsSerializer(data=request.query_params)
            params.is_valid(raise_exception=True)
            values = params.validated_data
        self.request = request
        self.limit: int = values["limit"]
        self.skip: int = values["skip"]
        self.cursor: Position | None = values.get("cursor")
        self.count = listing.count_bounded(limit=COUNT_EXACT_LIMIT)
        rows = listing.rows(skip=self.skip, limit=self.limit + 1, after=self.cursor)
        self.has_more = len(rows) > self.limit
        self.page = rows[: self.limit]
        self.last_position = listing.position(self.page[-1]) if self.page else None
        return self.page

    def get_next_link(self) -> str | None:
        if not self.has_more:
            return None
        url = replace_query_param(self.request.build_absolute_uri(), "limit", self.limit)
        next_skip = self.skip + self.limit
        if self.cursor is None and next_skip <= MAX_SKIP:
            return replace_query_param(url, "skip", next_skip)
        assert self.last_position is not None  # a page with more after it is not empty
        return replace_query_param(remove_query_param(url, "skip"), "cursor", cursor_encode(*self.last_position))

    def get_previous_link(self) -> str | None:
        if self.cursor is not None or self.skip == 0:
            return None
        url = replace_query_param(self.request.build_absolute_uri(), "limit", self.limit)
        previous_skip = max(self.skip - self.limit, 0)
        return replace_query_param(url, "skip", previous_skip) if previous_skip else remove_query_param(url, "skip")

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {"count": self.count, "next": self.get_next_link(), "previous": self.get_previous_link(), "data": data}
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["count", "next", "previous", "data"],
            "properties": {
                "count": {
                    "type": "integer",
                    "example": 42,
                    "description": f"Exact up to {COUNT_EXACT_LIMIT:,}; above it, an estimate.",
                },
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "data": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        def parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
            return {"name": name, "required": False, "in": "query", "description": description, "schema": schema}

        return [
            parameter(
                "skip",
                f"Rows to skip (at most {MAX_SKIP:,}; deeper pages: follow `next`).",
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_SKIP,
                    "default": 0,
                },
            ),
            parameter(
                "limit",
                f"Rows per page (at most {MAX_LIMIT}).",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                },
            ),
            parameter(
                "cursor",
                "Opaque position, valid only as this API wrote it in a `next` link (base64url, no padding);"
                " not with `skip`. Any other value is a 400 `validation_error` on `cursor`.",
                {"type": "string", "minLength": 1, "maxLength": CURSOR_MAX_LENGTH, "pattern": "^[A-Za-z0-9_-]+$"},
            ),
        ]
