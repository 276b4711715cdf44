"""Input serializers validate; output serializers represent. Nothing here writes."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pycountry
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from orders.models import (
    MAX_ITEM_PRICE,
    MAX_ITEM_QUANTITY,
    MAX_ITEMS_PER_ORDER,
    Order,
    OrderItem,
    OrderStatus,
    OrderStatusChange,
)
from orders.services import ItemInput, items_total
from orders_project.api.serializers import StrictInputSerializer

# ISO 4217 codes that are not money: testing, "no currency", and precious metals.
_NOT_MONEY = {"XTS", "XXX", "XAU", "XAG", "XPD", "XPT"}
CURRENCY_CODES = sorted(currency.alpha_3 for currency in pycountry.currencies if currency.alpha_3 not in _NOT_MONEY)


@extend_schema_field(
    {
        "type": "string",
        "enum": CURRENCY_CODES,
        "description": "ISO 4217 code of a currency (not a test code or a metal); any case is accepted.",
    }
)
class CurrencyField(serializers.CharField):
    """An ISO 4217 money code, in any case; upper case inside."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=3, max_length=3, **kwargs)

    def run_validation(self, data: Any = empty) -> Any:
        value = super().run_validation(data)  # the length checks first, as before
        code = value.upper()
        if code in _NOT_MONEY or pycountry.currencies.get(alpha_3=code) is None:
            raise serializers.ValidationError(f"{value!r} is not an ISO 4217 currency code.")
        return code


class OrderItemInputSerializer(StrictInputSerializer):
    product_id = serializers.CharField(min_length=1, max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_ITEM_QUANTITY)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0"), max_value=MAX_ITEM_PRICE)


class OrderCreateInputSerializer(StrictInputSerializer):
    user_id = serializers.CharField(min_length=1, max_length=64)
    currency = CurrencyField()
    items = OrderItemInputSerializer(many=True, min_length=1, max_length=MAX_ITEMS_PER_ORDER)  # type: ignore[call-arg]  # ListSerializer kwargs the stubs miss
    shipping_address = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    total_amount = serializers.DecimalField(
        max_digits=18,
        decimal_places=2,
        required=False,
        # null is "no check", as absent is (the browsable API's form starts with null here).
        allow_null=True,
        min_value=Decimal("0"),
        help_text="Optional check: when given it must equal the sum of quantity x price.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["items"] = [ItemInput(**item) for item in attrs["items"]]
        given = attrs.pop("total_amount", None)
        if given is not None and given != items_total(attrs["items"]):
            raise serializers.ValidationError(
                {"total_amount": [f"Must equal the sum of the items ({items_total(attrs['items'])}), got {given}."]}
            )
        return attrs


class OrderCancelInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=False,
        default="requested_by_client",
        initial="requested_by_client",  # what the browsable API's cancel form starts with
    )


class OrderItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderItem
        fields = ["product_id", "quantity", "price"]


def _money(value: Decimal) -> str:
    """As DecimalField represents the 2-place money columns (COERCE_DECIMAL_TO_STRING)."""
    return f"{value:.2f}"


def _timestamp(value: dt.datetime | None) -> str | None:
    """As DateTimeField represents it with the API's DATETIME_FORMAT, "%Y-%m-%dT%H:%M:%S.%fZ"
    (isoformat gives the same text at a third of strftime's cost)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class OrderSerializer(serializers.ModelSerializer):
    items = OrderItemSerializer(many=True, read_only=True)

    def to_representation(self, order: Order) -> dict[str, Any]:
        """The fields below, each as ModelSerializer represents it (test_representation.py
        holds the two equal for orders in every state), written out because a list page
        represents 100 orders and DRF's field-by-field walk took ~0.17 ms per order."""
        return {
            "id": str(order.id),
            "user_id": order.user_id,
            "status": order.status,
            "currency": order.currency,
            "total_amount": _money(order.total_amount),
            "shipping_address": order.shipping_address,
            "items": [
                {"product_id": item.product_id, "quantity": item.quantity, "price": _money(item.price)}
                for item in order.item_list
            ],
            "payment_id": order.payment_id,
            "tracking_number": order.tracking_number,
            "carrier": order.carrier,
            "estimated_delivery": None if order.estimated_delivery is None else order.estimated_delivery.isoformat(),
            "created_at": _timestamp(order.created_at),
            "updated_at": _timestamp(order.updated_at),
            "confirmed_at": _timestamp(order.confirmed_at),
            "shipped_at": _timestamp(order.shipped_at),
            "cancelled_at": _timestamp(order.cancelled_at),
            "cancel_reason": order.cancel_reason,
            "version": order.version,
        }

    class Meta:
        model = Order
        fields = [
            "id",
            "user_id",
            "status",
            "currency",
            "total_amount",
            "shipping_address",
            "items",
            "payment_id",
            "tracking_number",
            "carrier",
            "estimated_delivery",
            "created_at",
            "updated_at",
            "confirmed_at",
            "shipped_at",
            "cancelled_at",
            "cancel_reason",
            "version",
        ]
        read_only_fields = fields


# Who made a change, by the prefix of what history stores ("staff:<admin login>",
# "client:<API client>", "system:<process>", "consumer:<process>"): the role a client is shown.
_ROLES = {"staff": "staff", "client": "customer"}


def changed_by_role(changed_by: str) -> str:
    """`staff`, `customer` (through the API, for the order's customer) or `system`."""
    return _ROLES.get(changed_by.partition(":")[0], "system")


class OrderStatusChangeSerializer(serializers.ModelSerializer):
    # Declared so the schema says what is sent: "" on the creation row (was documented as a status only).
    from_status = serializers.ChoiceField(
        choices=OrderStatus.choices, allow_blank=True, read_only=True, help_text="Empty on the creation row."
    )
    changed_by = serializers.SerializerMethodField(
        help_text="Who made the change: `staff`, `customer` (an API client, for the order's customer) or "
        "`system`. Staff see who exactly (`staff:<login>`, `client:<API client>`, `system:<process>`): "
        "a login name is not handed to clients."
    )

    class Meta:
        model = OrderStatusChange
        fields = ["order_version", "from_status", "to_status", "changed_at", "changed_by", "reason"]
        read_only_fields = fields

    def get_changed_by(self, change: OrderStatusChange) -> str:
        return change.changed_by if self.context.get("full_changed_by") else changed_by_role(change.changed_by)


class CustomerSerializer(serializers.Serializer):
    name = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)


class OrderDetailSerializer(OrderSerializer):
    """One order, with the customer's name and email when the user cache has them."""

    customer = serializers.SerializerMethodField(
        help_text="The customer's name and email: null when the user cache does not know them, "
        "and always null for a client without the `orders.view_customer_pii` permission (staff have it)."
    )

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "customer"]
        read_only_fields = fields

    def to_representation(self, order: Order) -> dict[str, Any]:
        return {**super().to_representation(order), "customer": self.get_customer(order)}

    @extend_schema_field(CustomerSerializer(allow_null=True))
    def get_customer(self, order: Order) -> dict[str, str | None] | None:
        customer = self.context.get("customer")
        return None if customer is None else {"name": customer.name, "email": customer.email}
