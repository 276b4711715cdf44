"""Parse and validate one user event from Kafka (contract: docs/events.md and
orders_project/contract/schemas/user.*.json).

Anything that does not match the contract raises BadMessage with a reason;
the consumer sends such messages to the dead-letter topic and moves on.

One source of truth: the schema. The field table, the statuses and the user_id
bound below are read from it; the hand checks come first only to give the
common faults a plain reason ("missing user_id"), and the schema is checked last,
so anything else it refuses is refused with its reason ("schema: data.email: ...").
The checks no JSON Schema can make stay here: lone surrogates, a real calendar
date, and the future-skew bound.
"""

import datetime as dt
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from orders_project import contract

KINDS = {event_type: event_type.removeprefix("user.") for event_type in contract.USER_EVENT_TYPES}


def _data_schema(event_type: str) -> dict[str, Any]:
    data: dict[str, Any] = contract.schema(event_type)["properties"]["data"]
    return data


# Fields each kind may carry in `data` besides user_id, and whether they are required (from the schemas).
_FIELDS: dict[str, dict[str, bool]] = {
    kind: {
        name: name in _data_schema(event_type)["required"]
        for name in _data_schema(event_type)["properties"]
        if name != "user_id"
    }
    for event_type, kind in KINDS.items()
}
USER_STATUSES = set(_data_schema("user.created")["properties"]["status"]["enum"])
# A user_id is a key in Redis and a value in PostgreSQL queries: bounded, and
# printable (PostgreSQL refuses NUL in text, which would fail the cancel query
# forever as if the database were down).
# Unicode's Cc category (C0 and C1 controls, NUL and DEL included) is exactly these 65 code points.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")
USER_ID_MAX_LENGTH = int(_data_schema("user.created")["properties"]["user_id"]["maxLength"])


class BadMessage(ValueError):
    """The message breaks the event contract; `reason` goes into the DLQ header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class UserEvent:
    event_id: str
    kind: str
    user_id: str
    timestamp_ms: int
    fields: dict[str, str]


def _timestamp_ms(value: Any, name: str) -> int:
    if not isinstance(value, str):
        raise BadMessage(f"{name} must be an RFC 3339 string")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadMessage(f"{name} is not an RFC 3339 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise BadMessage(f"{name} has no time zone")
    return int(parsed.timestamp() * 1000)


def _check_text(value: str, name: str) -> None:
    """Refuse a string that cannot be encoded as UTF-8 (a lone surrogate such as JSON "\\ud800")."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadMessage(f"{name} is not valid Unicode (lone surrogate)") from None


def _check_user_id(user_id: Any) -> str:
    if not isinstance(user_id, str) or not user_id:
        raise BadMessage("missing user_id")
    if len(user_id) > USER_ID_MAX_LENGTH:
        raise BadMessage(f"user_id longer than {USER_ID_MAX_LENGTH} characters")
    _check_text(user_id, "user_id")
    if _CONTROL_CHARACTER.search(user_id):
        raise BadMessage("user_id contains a control character")
    return user_id


def _check_not_ahead(timestamp_ms: int, now_ms: int | None) -> None:
    """Refuse an event dated beyond the allowed clock skew: its time would make every
    later event of that user look stale (a user set inactive could keep ordering)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    skew_ms = settings.USER_EVENT_MAX_FUTURE_SKEW_SECONDS * 1000
    if timestamp_ms > now_ms + skew_ms:
        ahead = (timestamp_ms - now_ms) // 1000
        raise BadMessage(
            f"timestamp is {ahead}s in the future (more than USER_EVENT_MAX_FUTURE_SKEW_SECONDS="
            f"{settings.USER_EVENT_MAX_FUTURE_SKEW_SECONDS})"
        )


def event_parse(value: bytes | None, *, topic_kind: str | None = None, now_ms: int | None = None) -> UserEvent:
    """Turn a message value into a UserEvent or raise BadMessage. `now_ms` defaults to the clock."""
    if value is None:
        raise BadMessage("empty message")
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadMessage("not JSON") from None
    except RecursionError:  # "[[[[..." would otherwise crash the consumer on every redelivery
        raise BadMessage("JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise BadMessage("not a JSON object")
    event_id = body.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise BadMessage("missing event_id")
    try:
        uuid.UUID(event_id)
    except ValueError:
        raise BadMessage("event_id is not a UUID") from None
    event_type = body.get("event_type")
    # Not a string (a list, an object) is as unknown as a misspelt one, not a crash.
    kind = KINDS.get(event_type) if isinstance(event_type, str) else None
    if kind is None:
        raise BadMessage(f"unknown event_type {str(body.get('event_type'))[:40]!r}")
    if topic_kind is not None and kind != topic_kind:
        raise BadMessage(f"event_type {body['event_type']} on the {topic_kind} topic")
    data = body.get("data")
    if not isinstance(data, dict):
        raise BadMessage("data must be an object")
    user_id = _check_user_id(data.get("user_id"))
    timestamp_ms = _timestamp_ms(body.get("timestamp"), "timestamp")
    _check_not_ahead(timestamp_ms, now_ms)
    fields = {"user_id": user_id}
    for name, required in _FIELDS[kind].items():
        if name not in data or data[name] is None:
            if required:
                raise BadMessage(f"{name} is required for user.{kind}")
            continue  # absent (or null) means "unchanged": never write nulls over stored values
        if not isinstance(data[name], str):
            raise BadMessage(f"{name} must be a string")
        _check_text(data[name], name)
        if name.endswith("_at"):
            _timestamp_ms(data[name], name)
        fields[name] = data[name]
    if "status" in fields and fields["status"] not in USER_STATUSES:
        raise BadMessage(f"status must be one of {sorted(USER_STATUSES)}")
    reason = contract.first_error(f"user.{kind}", body)
    if reason is not None:
        raise BadMessage(f"schema: {reason}"[:500])
    return UserEvent(event_id=event_id, kind=kind, user_id=user_id, timestamp_ms=timestamp_ms, fields=fields)
