"""List filters. django-filter validates them, so a bad value is a 400 naming the parameter."""

import django_filters

from orders.models import Order, OrderStatus


class OrderFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices)
    user_id = django_filters.CharFilter(max_length=64)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ["status", "user_id", "created_after", "created_before"]
