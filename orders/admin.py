"""Staff views of orders. Orders are view-only here: a change must go through the
services so it gets its history row and its event. List pages stay cheap on a
large table: the count is bounded, and no filter reads the whole table for its
choices (no date hierarchy; the currency choices come from recent orders)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from knox.models import AuthToken

from orders import selectors, services
from orders.models import Order, OrderItem, OrderStatusChange
from orders.replay import ReplayFilter, orders_replay
from orders.transitions import InvalidTransition
from orders_project.admin_lookups import SafeLookupsAdmin
from orders_project.counting import BoundedCountPaginator

# The replay action works inside the request: a few orders (each has at most three
# events), not a bulk replay, which is `manage.py outbox_replay`'s job.
REPLAY_MAX_ORDERS = 20

# The currency filter offers the currencies of this many newest orders (a bounded
# read through the created_at index) instead of a DISTINCT over every order.
CURRENCY_CHOICES_FROM_NEWEST = 1000


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Items and history are part of the order: whoever may see the order sees them
        # (Django would ask for view_orderitem / view_orderstatuschange, which nobody is given).
        return bool(request.user.has_perm("orders.view_order") or request.user.has_perm("orders.change_order"))


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = readonly_fields = ("product_id", "quantity", "price")


class OrderStatusChangeInline(ReadOnlyInline):
    model = OrderStatusChange
    fields = readonly_fields = ("order_version", "from_status", "to_status", "changed_at", "changed_by", "reason")


class CurrencyFilter(admin.SimpleListFilter):
    title = "currency"
    parameter_name = "currency"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        newest = Order.objects.order_by("-created_at").values_list("currency", flat=True)
        return [(code, code) for code in sorted(set(newest[:CURRENCY_CHOICES_FROM_NEWEST]))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(currency=self.value()) if self.value() else queryset


# --- Staff cancel and the order's events ------------------------------------------
# A block of its own: OrderAdmin below inherits it, so its other actions stay apart.

# Cancels run in the request, one transaction per order: a few dozen at a time, not
# "select all" over the whole table (the bounded list is what gets cancelled).
CANCEL_MAX_ORDERS = 100
STAFF_CANCEL_REASON = "cancelled_by_staff"


class OrderStaffAdmin(SafeLookupsAdmin):
    """The "Cancel selected orders" action (permission orders.cancel_order) and the
    order page's events (outbox rows, for staff who may view the outbox)."""

    change_form_template = "admin/orders/order/change_form.html"
    # Django's "Show counts" would COUNT every filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER

    @admin.action(description="Cancel selected orders", permissions=["cancel"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        order_ids = list(queryset.order_by("pk").values_list("id", flat=True)[: CANCEL_MAX_ORDERS + 1])
        if len(order_ids) > CANCEL_MAX_ORDERS:
            self.message_user(request, f"Select at most {CANCEL_MAX_ORDERS} orders to cancel.", messages.ERROR)
            return
        changed_by = f"staff:{request.user.get_username()}"
        cancelled, refused = 0, []
        for order_id in order_ids:
            try:
                # Through the service: row lock, history row and order.cancelled event in one transaction.
                services.order_cancel(order_id=order_id, reason=STAFF_CANCEL_REASON, changed_by=changed_by)
            except InvalidTransition as exc:
                refused.append(f"{order_id} ({exc})")
            except Order.DoesNotExist:
                continue
            else:
                cancelled += 1
        if cancelled:
            self.message_user(request, f"Cancelled {cancelled} order(s).", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                f"409 Conflict: {len(refused)} order(s) cannot be cancelled: {'; '.join(refused)}",
                messages.ERROR,
            )

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("orders.cancel_order"))

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        may_view_events = request.user.has_perm("outbox.view_outboxevent")
        context["may_view_events"] = may_view_events
        context["order_events"] = selectors.order_events(order=obj) if obj is not None and may_view_events else []
        return super().render_change_form(request, context, add, change, form_url, obj)


# --- end of the staff cancel block -------------------------------------------------


@admin.register(Order)
class OrderAdmin(OrderStaffAdmin):
    list_display = ["id", "user_id", "status", "total_amount", "currency", "created_at", "version"]
    list_filter = ["status", CurrencyFilter, "created_at", "confirmed_at", "shipped_at", "cancelled_at"]
    search_fields = ["id", "user_id"]
    inlines = [OrderItemInline, OrderStatusChangeInline]
    readonly_fields = [field.name for field in Order._meta.fields]
    paginator = BoundedCountPaginator
    show_full_result_count = False  # it would COUNT(*) the whole table on every filtered view
    actions = ["replay_events", "cancel_orders"]

    @admin.action(description="Replay the selected orders' events to Kafka", permissions=["replay"])
    def replay_events(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        order_ids = list(queryset.values_list("id", flat=True)[: REPLAY_MAX_ORDERS + 1])
        if len(order_ids) > REPLAY_MAX_ORDERS:
            self.message_user(
                request,
                f"Select at most {REPLAY_MAX_ORDERS} orders; use manage.py outbox_replay for more.",
                messages.ERROR,
            )
            return
        result = orders_replay(replay_filter=ReplayFilter(order_ids=order_ids))
        self.message_user(request, f"Replay of {len(order_ids)} order(s): {result.line()}.", messages.SUCCESS)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # Replaying writes outbox rows: it asks for the permission that requeues them.
        return bool(request.user.has_perm("outbox.change_outboxevent"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders are created through the API so they get their event

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # An order's page is view-only (a POST to it is refused): saving the form would
        # write the row without its history and event. "change" on the list (obj None)
        # stays, for actions that go through the services.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting would leave consumers with events for an order that vanished


# API tokens: knox's own admin lists each digest and lets staff edit the stored
# digest and prefix, or create tokens that never expire. Here staff see whose
# token it is and when it expires, and can only revoke (delete) it; new tokens
# come from `manage.py create_api_token`, which sets a scope and an expiry.
admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(SafeLookupsAdmin):
    list_display = ["user", "created", "expiry"]
    list_filter = ["expiry"]
    search_fields = ["user__username"]
    fields = ("user", "created", "expiry")
    readonly_fields = fields
    paginator = BoundedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
