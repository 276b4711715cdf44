"""The `data` of each order event, exactly as the event contract in docs/events.md."""

from typing import Any

from orders.models import Order
from orders_project.rfc3339 import rfc3339


def _common(order: Order) -> dict[str, Any]:
    return {
        "order_id": str(order.id),
        "user_id": order.user_id,
        "status": order.status,
        "order_version": order.version,
    }


def order_created_data(order: Order) -> dict[str, Any]:
    return {
        **_common(order),
        "total_amount": str(order.total_amount),
        "currency": order.currency,
        "shipping_address": order.shipping_address,
        "items": [
            {"product_id": item.product_id, "quantity": item.quantity, "price": str(item.price)}
            for item in order.item_list
        ],
        "created_at": rfc3339(order.created_at),
    }


def order_confirmed_data(order: Order) -> dict[str, Any]:
    return {
        **_common(order),
        "payment_id": order.payment_id,
        "total_amount": str(order.total_amount),
        "currency": order.currency,
        "confirmed_at": rfc3339(order.confirmed_at),
    }


def order_shipped_data(order: Order) -> dict[str, Any]:
    return {
        **_common(order),
        "tracking_number": order.tracking_number,
        "carrier": order.carrier,
        "estimated_delivery": order.estimated_delivery.isoformat() if order.estimated_delivery else None,
        "shipped_at": rfc3339(order.shipped_at),
    }


def order_cancelled_data(order: Order) -> dict[str, Any]:
    return {**_common(order), "reason": order.cancel_reason, "cancelled_at": rfc3339(order.cancelled_at)}
