"""Input serializers validate; output serializers represent. Nothing here writes."""

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pycountry
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from orders.models import (
    CENTS,
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


_CURRENCIES = frozenset(CURRENCY_CODES)
_CREATE_KEYS = frozenset(OrderCreateInputSerializer._declared_fields)
_CREATE_REQUIRED = frozenset({"user_id", "currency", "items"})
_ITEM_KEYS = frozenset(OrderItemInputSerializer._declared_fields)
# Plain decimals the money fields take as they are: digits, at most 2 places, few enough
# whole digits for max_digits (7 + 2 of the price's 10; 16 + 2 of the total's 18).
_PRICE = re.compile(r"[0-9]{1,7}(?:\.[0-9]{1,2})?")
_TOTAL = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,2})?")


def _plain_text(value: Any, *, max_length: int, allow_blank: bool = False) -> str | None:
    """A string CharField(max_length, min_length 1 unless blank allowed) keeps as it is
    stripped, else None: not a str, blank where not allowed, too long, NUL or a lone surrogate."""
    if type(value) is not str:
        return None
    value = value.strip()
    if not value:
        return "" if allow_blank else None
    if len(value) > max_length or "\x00" in value:
        return None
    if not value.isascii():
        try:
            value.encode()  # a lone surrogate cannot be encoded
        except UnicodeEncodeError:
            return None
    return value


def _plain_decimal(value: Any, pattern: re.Pattern[str]) -> Decimal | None:
    """A JSON number or string DecimalField reads as a plain decimal matching `pattern`, quantized
    to cents as the field does; else None."""
    if type(value) not in (str, int, float):
        return None
    text = str(value).strip()
    return Decimal(text).quantize(CENTS) if pattern.fullmatch(text) else None


def _create_input_plain(data: Any) -> dict[str, Any] | None:
    """What OrderCreateInputSerializer validates `data` to, for a body of the plain shape the API
    is sent (strings, integer quantities, plain decimals, all within bounds); None for anything
    else, which the serializer then judges. Never refuses: a None is not an error."""
    if type(data) is not dict or not _CREATE_REQUIRED <= data.keys() <= _CREATE_KEYS:
        return None
    user_id = _plain_text(data["user_id"], max_length=64)
    currency = data["currency"]
    if user_id is None or type(currency) is not str:
        return None
    currency = currency.strip()
    # ASCII: upper() of some letters is longer ("ß" is "SS"), and the field checks the length before.
    if len(currency) != 3 or not currency.isascii() or currency.upper() not in _CURRENCIES:
        return None
    shipping_address = _plain_text(data.get("shipping_address", ""), max_length=500, allow_blank=True)
    raw_items = data["items"]
    if shipping_address is None or type(raw_items) is not list or not 1 <= len(raw_items) <= MAX_ITEMS_PER_ORDER:
        return None
    items = []
    for raw in raw_items:
        if type(raw) is not dict or raw.keys() != _ITEM_KEYS:
            return None
        product_id = _plain_text(raw["product_id"], max_length=64)
        quantity = raw["quantity"]
        price = _plain_decimal(raw["price"], _PRICE)
        if product_id is None or type(quantity) is not int or not 1 <= quantity <= MAX_ITEM_QUANTITY:
            return None
        if price is None or price > MAX_ITEM_PRICE:
            return None
        items.append(ItemInput(product_id=product_id, quantity=quantity, price=price))
    given = data.get("total_amount")
    if given is not None and _plain_decimal(given, _TOTAL) != items_total(items):
        return None
    return {"user_id": user_id, "currency": currency.upper(), "items": items, "shipping_address": shipping_address}


def create_input_validate(data: Any) -> dict[str, Any]:
    """OrderCreateInputSerializer's validated_data for a create's body, or its ValidationError.

    A body of the plain shape is read without the serializer (_create_input_plain): building
    its field tree per request (DRF deep-copies every declared field) and walking it was ~11 %
    of a create's CPU. Anything else, every refusal included, goes through the serializer, so
    the errors are the serializer's own; test_create_input.py holds the two equal.
    """
    plain = _create_input_plain(data)
    if plain is not None:
        return plain
    params = OrderCreateInputSerializer(data=data)
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


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


def order_represent(order: Any, items: Iterable[tuple[str, int, Decimal]]) -> dict[str, Any]:
    """OrderSerializer's representation of `order` with its `items` as (product_id, quantity,
    price), oldest first.

    Every field as ModelSerializer represents it (test_representation.py holds the two equal
    for orders in every state), written out because DRF's field-by-field walk took ~0.17 ms
    per order. A list page is written by PostgreSQL in the same forms (orders.listing), and
    its bytes are held to the same walk."""
    return {
        "id": str(order.id),
        "user_id": order.user_id,
        "status": order.status,
        "currency": order.currency,
        "total_amount": _money(order.total_amount),
        "shipping_address": order.shipping_address,
        "items": [
            {"product_id": product_id, "quantity": quantity, "price": _money(price)}
            for product_id, quantity, price in items
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


class OrderSerializer(serializers.ModelSerializer):
    items = OrderItemSerializer(many=True, read_only=True)

    def to_representation(self, order: Order) -> dict[str, Any]:
        """order_represent's."""
        return order_represent(order, ((item.product_id, item.quantity, item.price) for item in order.item_list))

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
        return customer_represent(self.context.get("customer"))


def customer_represent(customer: Any) -> dict[str, str | None] | None:
    """OrderDetailSerializer's `customer` for a user-cache entry (users_cache.CachedUser) or None."""
    return None if customer is None else {"name": customer.name, "email": customer.email}
