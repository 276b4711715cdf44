"""List filters. django-filter validates them, so a bad value is a 400 naming the parameter."""

import datetime as dt
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django_filters.constants import EMPTY_VALUES
from django_filters.fields import IsoDateTimeField
from django_filters.utils import translate_validation
from drf_spectacular.utils import extend_schema_field

from orders.listing import OrderListFilters
from orders.models import Order, OrderStatus

USER_ID_MAX_LENGTH = 64


class UTCDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC.

    Python accepts offsets up to +/-23:59, PostgreSQL only up to +/-15:59: passed on
    as given, `-18:44` was a DataError (500). In UTC every offset is fine, and a
    moment that does not exist in UTC (year 1 minus an offset) is a 400.
    """

    def to_python(self, value: Any) -> dt.datetime | None:
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationError("Enter a date-time between the years 1 and 9999 in UTC.", code="invalid") from None


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCDateTimeField


@extend_schema_field({"type": "string", "maxLength": USER_ID_MAX_LENGTH, "pattern": "^[^\\x00]*$"})
class UserIdFilter(django_filters.CharFilter):
    """An exact user id; the schema says what the form field refuses (longer ids, NUL)."""


class OrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)
    user_id = UserIdFilter(max_length=USER_ID_MAX_LENGTH)
    created_after = UTCDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ["status", "user_id", "created_after", "created_before"]


# The query parameters the list's paging reads (orders_project.api.pagination), not filters.
_PAGING_PARAMETERS = frozenset({"skip", "limit", "cursor"})
_STATUSES = frozenset(OrderStatus.values)


def order_filters_plain(params: QueryDict) -> OrderListFilters | None:
    """The filters OrderFilter reads from query parameters of the plain shape a list is
    asked with (at most one each of a known `status` and a `user_id` that is already stripped,
    1 to 64 characters, no NUL; paging parameters beside them); None for anything else, which
    OrderFilter then judges. Never refuses: a None is not an error."""
    status = user_id = None
    for name, values in params.lists():
        if name in _PAGING_PARAMETERS:
            continue
        if len(values) != 1:
            return None
        value = values[0]
        if name == "status" and value in _STATUSES:
            status = value
        elif (
            name == "user_id"
            and 0 < len(value) <= USER_ID_MAX_LENGTH
            and value == value.strip()
            and "\x00" not in value
        ):
            user_id = value
        else:
            return None
    return OrderListFilters(status=status, user_id=user_id)


def order_filters_judged(params: QueryDict) -> OrderListFilters:
    """The filters OrderFilter reads from these query parameters; a 400 naming each bad one."""
    filterset = OrderFilter(params, queryset=Order.objects.none())
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    cleaned = filterset.form.cleaned_data
    # An empty value filters nothing, as django-filter's Filter.filter() skips it.
    return OrderListFilters(
        **{name: None if cleaned.get(name) in EMPTY_VALUES else cleaned[name] for name in OrderFilter.base_filters}
    )


def order_list_filters(params: QueryDict) -> OrderListFilters:
    """The list's filters from its query parameters.

    A FilterSet builds its form per request (deep copies of every field, labels, cleaning):
    ~20 % of a page's CPU for one `status` or `user_id`. Parameters of the plain shape are
    read directly (order_filters_plain); anything else, every refusal included, goes through
    OrderFilter, so every error is its own (orders/tests/test_filters_plain.py holds the two
    equal). The schema comes from OrderFilter too (the view's DjangoFilterBackend)."""
    plain = order_filters_plain(params)
    return plain if plain is not None else order_filters_judged(params)
