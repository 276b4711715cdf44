"""Staff views of orders. Status fields are read-only: a change must go through
the services so it gets its history row and its event."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from orders.models import Order, OrderItem, OrderStatusChange


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = readonly_fields = ("product_id", "quantity", "price")


class OrderStatusChangeInline(ReadOnlyInline):
    model = OrderStatusChange
    fields = readonly_fields = ("order_version", "from_status", "to_status", "changed_at", "changed_by", "reason")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "user_id", "status", "total_amount", "currency", "created_at", "version"]
    list_filter = ["status", "currency", "created_at", "confirmed_at", "shipped_at", "cancelled_at"]
    search_fields = ["id", "user_id"]
    date_hierarchy = "created_at"
    inlines = [OrderItemInline, OrderStatusChangeInline]
    readonly_fields = [field.name for field in Order._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders are created through the API so they get their event

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting would leave consumers with events for an order that vanished
