"""Order tables and the invariants the database enforces on them.

Workflows (who may change what, and the events that follow) live in
`orders.services`; the allowed status transitions in `orders.transitions`.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    SHIPPED = "shipped", "Shipped"
    CANCELLED = "cancelled", "Cancelled"


# Upper bounds that keep a single bad request from overflowing NUMERIC columns:
# 100 items x 10,000 units x 1,000,000.00 fits NUMERIC(18, 2).
MAX_ITEM_PRICE = Decimal("1000000.00")
CENTS = Decimal("0.01")  # the scale of every money column (decimal_places=2)
MAX_ITEM_QUANTITY = 10_000
MAX_ITEMS_PER_ORDER = 100


class OrderQuerySet(models.QuerySet["Order"]):
    def of_customer(self, customer_id: str | None) -> "OrderQuerySet":
        """The orders placed for one customer (`user_id`); none for None."""
        if customer_id is None:
            return self.none()
        return self.filter(user_id=customer_id)


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.CharField(max_length=64)  # indexed with created_at, see Meta.indexes
    # The API client that created the order (not the customer), for the record:
    # access follows the customer (`user_id`), see `orders.selectors.client_scope`.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    currency = models.CharField(max_length=3)
    total_amount = models.DecimalField(max_digits=18, decimal_places=2)
    shipping_address = models.CharField(max_length=500, blank=True, default="")
    payment_id = models.CharField(max_length=64, blank=True, default="")
    tracking_number = models.CharField(max_length=64, blank=True, default="")
    carrier = models.CharField(max_length=64, blank=True, default="")
    estimated_delivery = models.DateField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True, default="")
    version = models.PositiveIntegerField(default=1)
    # Set by the services (not auto_now) so one transaction stamps one time everywhere.
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The list endpoint: newest first, optionally per status.
            models.Index(fields=["-created_at", "-id"], name="order_created_idx"),
            # With id, so a keyset cursor deep into one status's list starts from the index.
            models.Index(fields=["status", "-created_at", "-id"], name="order_status_created_id_idx"),
            # One customer's orders, newest first (?user_id=, a bound client's list): a page
            # comes off the index instead of sorting all of that customer's orders.
            models.Index(fields=["user_id", "-created_at", "-id"], name="order_user_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_valid"),
            models.CheckConstraint(condition=Q(total_amount__gte=0), name="order_total_non_negative"),
            models.CheckConstraint(condition=Q(version__gte=1), name="order_version_positive"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="order_currency_iso"),
        ]
        # Granted to API users (`create_api_token --service`, or in the admin); staff have both.
        permissions = [
            ("act_for_any_customer", "Can create, read and cancel orders of any customer through the API"),
            ("view_customer_pii", "Can see the customer's name and email on an order"),
            # The admin's "Cancel selected orders" action (through orders.services.order_cancel).
            ("cancel_order", "Can cancel orders from the admin"),
        ]

    def __str__(self) -> str:
        return f"Order {self.id} ({self.status})"

    # What the API answer and the events list: plain lists, not prefetch_related,
    # because Django's prefetch builds a queryset per order (~9 ms a page of 100 here).
    @cached_property
    def item_list(self) -> list["OrderItem"]:
        """The items in insert order: one query, unless orders_items_load (or the create
        that inserted them) already set it."""
        return list(self.items.order_by("id"))


def orders_items_load(orders: list[Order]) -> list[Order]:
    """Set `item_list` on each order with one query for all of them; returns `orders`."""
    by_order: dict[uuid.UUID, list[OrderItem]] = {order.id: [] for order in orders}
    if by_order:
        for item in OrderItem.objects.filter(order_id__in=by_order).order_by("id"):
            by_order[item.order_id].append(item)
    for order in orders:
        order.item_list = by_order[order.id]
    return orders


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product_id = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()
    price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_item_quantity_positive"),
            models.CheckConstraint(condition=Q(price__gte=0), name="order_item_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"


class OrderStatusChange(models.Model):
    """One row per change of an order, creation included (from_status empty).

    `order_version` is the order's version after the change, so the unique
    constraint makes "one history row per change" a database fact.
    """

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="history")
    order_version = models.PositiveIntegerField()
    from_status = models.CharField(max_length=16, choices=OrderStatus.choices, blank=True, default="")
    to_status = models.CharField(max_length=16, choices=OrderStatus.choices)
    changed_at = models.DateTimeField()
    # Who or what caused it: "client:<username>", "system:lifecycle", "consumer:user-events".
    changed_by = models.CharField(max_length=150)
    reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["order_version"]
        constraints = [
            models.UniqueConstraint(fields=["order", "order_version"], name="order_history_one_row_per_version"),
            models.CheckConstraint(condition=Q(to_status__in=OrderStatus.values), name="order_history_to_valid"),
            models.CheckConstraint(
                condition=Q(from_status__in=[*OrderStatus.values, ""]), name="order_history_from_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} v{self.order_version}: {self.from_status or '-'} -> {self.to_status}"


class IdempotencyKeyStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"


class IdempotencyKey(models.Model):
    """A create request remembered under the client's Idempotency-Key for 24 hours."""

    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=IdempotencyKeyStatus.choices)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_location = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="idempotency_key_unique_per_client")]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.key}"


class ApiClient(models.Model):
    """An API user bound to the one customer it may act for.

    A client without this row and without `orders.act_for_any_customer` may act
    for nobody: it creates nothing and sees no order.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="api_client"
    )
    customer_id = models.CharField(max_length=64, help_text="The user_id whose orders this client may act on.")

    def __str__(self) -> str:
        return f"{self.user_id} -> customer {self.customer_id}"
