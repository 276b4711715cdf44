"""Factories for the order tests.

Orders are made through `orders.services.order_create`, so every factory
order is consistent the way a real one is: items, its first history row and
its `order.created` outbox row all exist. Later states are reached by walking
the transition table, one history row and one version per step.
"""

import datetime as dt
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from knox.models import AuthToken

from orders import services
from orders.idempotency import request_fingerprint
from orders.models import ApiClient, IdempotencyKey, Order, OrderStatus, OrderStatusChange
from orders.services import ItemInput
from orders.transitions import transition_check

# The path from pending to each status, one allowed transition per step.
_PATHS: dict[str, list[str]] = {
    OrderStatus.PENDING: [],
    OrderStatus.CONFIRMED: [OrderStatus.CONFIRMED],
    OrderStatus.SHIPPED: [OrderStatus.CONFIRMED, OrderStatus.SHIPPED],
    OrderStatus.CANCELLED: [OrderStatus.CANCELLED],
}
_STAMPS: dict[str, str] = {
    OrderStatus.CONFIRMED: "confirmed_at",
    OrderStatus.SHIPPED: "shipped_at",
    OrderStatus.CANCELLED: "cancelled_at",
}


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"client{n}")
    email = factory.Faker("email")
    is_staff = False


class StaffUserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True


def token_for(user: User, expiry: dt.timedelta | None = None) -> str:
    """A new API token of `user` (knox keeps only its digest, so this is the one chance to see it)."""
    _, token = AuthToken.objects.create(user=user, expiry=expiry)
    return str(token)


def grant(user: User, *codenames: str) -> User:
    """Give `user` orders permissions, e.g. "act_for_any_customer", "view_customer_pii"."""
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="orders", codename__in=codenames))
    return user


def bind(user: User, customer_id: str) -> User:
    """Bind the API client `user` to the one customer it may act for."""
    ApiClient.objects.update_or_create(user=user, defaults={"customer_id": customer_id})
    return user


class ItemInputFactory(factory.Factory[ItemInput]):
    class Meta:
        model = ItemInput

    product_id = factory.Faker("bothify", text="prod-####-??")
    quantity = factory.Faker("pyint", min_value=1, max_value=5)
    price = factory.Faker("pydecimal", left_digits=3, right_digits=2, positive=True)


class OrderFactory(factory.django.DjangoModelFactory[Order]):
    """`OrderFactory.create(status="shipped", created_at=...)` gives a consistent order.

    `created_by` is the API client that owns the order; `items` a list of ItemInput.
    """

    class Meta:
        model = Order

    user_id = factory.Faker("bothify", text="user-#####")
    currency = factory.Faker("random_element", elements=["USD", "EUR", "GBP", "JPY"])
    shipping_address = factory.Faker("street_address")
    created_by = factory.SubFactory(UserFactory)
    items = factory.LazyFunction(lambda: ItemInputFactory.build_batch(2))

    @classmethod
    def _create(
        cls,
        model_class: type[Order],
        *args: Any,
        created_by: Any,
        items: list[ItemInput],
        status: str = OrderStatus.PENDING,
        created_at: dt.datetime | None = None,
        **kwargs: Any,
    ) -> Order:
        order = services.order_create(
            items=items,
            created_by_id=created_by.pk if created_by else None,
            changed_by=f"client:{created_by.username}" if created_by else "system:test",
            **kwargs,
        )
        if created_at is not None:
            Order.objects.filter(pk=order.pk).update(created_at=created_at, updated_at=created_at)
            OrderStatusChange.objects.filter(order=order).update(changed_at=created_at)
        for target in _PATHS[status]:
            order_advance(order=order, to_status=target)
        order.refresh_from_db()
        return order


def order_advance(*, order: Order, to_status: str) -> Order:
    """Move `order` one allowed step, with its history row, as the lifecycle would.

    No service does confirm or ship yet; tests need orders in those states.
    """
    order.refresh_from_db()
    transition_check(from_status=order.status, to_status=to_status)
    now = timezone.now()
    from_status = order.status
    order.status = to_status
    order.version += 1
    order.updated_at = now
    setattr(order, _STAMPS[to_status], now)
    order.save()
    OrderStatusChange.objects.create(
        order=order,
        order_version=order.version,
        from_status=from_status,
        to_status=to_status,
        changed_at=now,
        changed_by="system:test",
    )
    return order


SEED_PAYLOAD: dict[str, Any] = {
    "user_id": "user123",
    "total_amount": 99.98,
    "currency": "USD",
    "items": [{"product_id": "prod1", "quantity": 2, "price": 49.99}],
}
SEED_TOTAL = Decimal("99.98")


def older_release_claim(*, client_id: int, key: str, age: dt.timedelta = dt.timedelta(0)) -> IdempotencyKey:
    """The IN_PROGRESS claim of SEED_PAYLOAD's create that an older release wrote in its own
    transaction before doing the work (seen during a rolling update)."""
    fingerprint = request_fingerprint(method="POST", path="/api/v1/orders/", body=SEED_PAYLOAD)
    return IdempotencyKey.objects.create(
        client_id=client_id,
        key=key,
        request_fingerprint=fingerprint,
        status="in_progress",
        created_at=timezone.now() - age,
    )
