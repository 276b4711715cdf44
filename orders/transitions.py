"""The order state machine: the one table of allowed status transitions."""

from orders.models import OrderStatus
from orders_project.errors import ConflictError

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


# The statuses from which a move to `status` is allowed, for set-based UPDATEs.
def sources_of(status: str) -> list[str]:
    return sorted(source for source, targets in ALLOWED_TRANSITIONS.items() if status in targets)


class InvalidTransition(ConflictError):
    code = "invalid_transition"


def transition_check(*, from_status: str, to_status: str) -> None:
    """Raise InvalidTransition unless `from_status -> to_status` is in the table."""
    if to_status not in ALLOWED_TRANSITIONS.get(from_status, frozenset()):
        code = "order_not_cancellable" if to_status == OrderStatus.CANCELLED else "invalid_transition"
        raise InvalidTransition(f"A {from_status} order cannot become {to_status}.", code=code)
