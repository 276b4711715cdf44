"""List filters. django-filter validates them, so a bad value is a 400 naming the parameter."""

import datetime as dt
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

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
