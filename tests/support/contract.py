"""The check the root conftest runs on every outbox row a test wrote: the one place
where produced events meet the contract (orders_project/contract/schemas)."""

from typing import Any

from orders_project import contract


def outbox_row_problems(*, event_type: str, key: str, payload: Any, headers: Any) -> list[str]:
    """Why this outbox row breaks the contract; empty if it does not."""
    problems = []
    try:
        contract.schema(event_type)
    except KeyError:
        return [f"{event_type}: no schema in orders_project/contract/schemas"]
    if event_type not in contract.ORDER_EVENT_TYPES:
        problems.append(f"{event_type}: this service does not produce it (see asyncapi.yaml operations)")
    reason = contract.first_error(event_type, payload)
    if reason:
        problems.append(f"{event_type} payload: {reason}")
    reason = contract.first_error(contract.ORDER_HEADERS, headers)
    if reason:
        problems.append(f"{event_type} headers: {reason}")
    if isinstance(payload, dict) and isinstance(headers, dict):
        for name in ("event_id", "event_type"):
            if headers.get(name) != payload.get(name):
                problems.append(f"{event_type}: header {name} {headers.get(name)!r} != payload {payload.get(name)!r}")
        data = payload.get("data")
        if isinstance(data, dict) and key != data.get("user_id"):
            problems.append(f"{event_type}: key {key!r} is not data.user_id {data.get('user_id')!r}")
    return problems
