"""event_parse: the contract of user events, and every reason a message is refused."""

import json
from typing import Any

import pytest

from orders_project import contract
from tests.support.users import at, ms
from users_cache.events import BadMessage, UserEvent, event_parse

EVENT_ID = "6f1c2b9e-3d4a-4e5f-8a7b-9c0d1e2f3a4b"
NOW_MS = ms(at(0))  # the clock the future-timestamp checks compare with


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": EVENT_ID,
        "event_type": "user.updated",
        "timestamp": "2026-11-01T12:00:00Z",
        "version": "1.0",
        "data": {"user_id": "user-1", "name": "Ada"},
    }
    body.update(changes)
    return body


def _encode(body: Any) -> bytes:
    return json.dumps(body).encode()


def _data(**data: Any) -> dict[str, Any]:
    return {"user_id": "user-1", **data}


def test_created_parses_every_field() -> None:
    value = _encode(
        _body(
            event_type="user.created",
            data=_data(email="ada@example.com", name="Ada", status="active", created_at="2026-11-01T11:00:00+00:00"),
        )
    )

    event = event_parse(value, topic_kind="created")

    assert event == UserEvent(
        event_id=EVENT_ID,
        kind="created",
        user_id="user-1",
        timestamp_ms=ms(at(0)),
        fields={
            "user_id": "user-1",
            "email": "ada@example.com",
            "name": "Ada",
            "status": "active",
            "created_at": "2026-11-01T11:00:00+00:00",
        },
    )


def test_partial_update_keeps_only_the_fields_present_and_drops_nulls() -> None:
    value = _encode(_body(data=_data(name="Ada L.", email=None, updated_at="2026-11-01T12:00:00Z", extra="ignored")))

    event = event_parse(value, topic_kind="updated")

    # A null is "unchanged", never a value to write over the stored one.
    assert event.fields == {"user_id": "user-1", "name": "Ada L.", "updated_at": "2026-11-01T12:00:00Z"}
    assert event.kind == "updated"


def test_deleted_parses_with_its_reason() -> None:
    value = _encode(
        _body(event_type="user.deleted", data=_data(deleted_at="2026-11-01T12:00:00Z", reason="account_closed"))
    )

    event = event_parse(value, topic_kind="deleted")

    assert event.kind == "deleted"
    assert event.fields == {"user_id": "user-1", "deleted_at": "2026-11-01T12:00:00Z", "reason": "account_closed"}


def test_timestamp_offset_is_converted_to_utc_epoch_ms() -> None:
    event = event_parse(_encode(_body(timestamp="2026-11-01T14:00:00.250+02:00")))

    assert event.timestamp_ms == ms(at(0.25))


def test_without_topic_kind_any_user_event_type_is_accepted() -> None:
    event = event_parse(_encode(_body(event_type="user.deleted", data=_data())))

    assert event.kind == "deleted"


BAD = [
    pytest.param(None, "empty message", id="tombstone"),
    pytest.param(b"{not json", "not JSON", id="not-json"),
    pytest.param(b"\xff\xfe\x00", "not JSON", id="not-utf8"),
    pytest.param(b"[" * 100_000, "JSON nested too deeply", id="deeply-nested"),
    pytest.param(b"[1, 2]", "not a JSON object", id="array"),
    pytest.param(b'"text"', "not a JSON object", id="string"),
    pytest.param(_encode({k: v for k, v in _body().items() if k != "event_id"}), "missing event_id", id="no-event-id"),
    pytest.param(_encode(_body(event_id="")), "missing event_id", id="empty-event-id"),
    pytest.param(_encode(_body(event_id=42)), "missing event_id", id="int-event-id"),
    pytest.param(_encode(_body(event_id="evt-1")), "event_id is not a UUID", id="event-id-not-uuid"),
    pytest.param(_encode(_body(event_type="user.exploded")), "unknown event_type 'user.exploded'", id="unknown-type"),
    pytest.param(
        _encode({k: v for k, v in _body().items() if k != "event_type"}), "unknown event_type 'None'", id="no-type"
    ),
    pytest.param(
        _encode(_body(event_type=["user.updated"])), "unknown event_type \"['user.updated']\"", id="list-type"
    ),
    pytest.param(_encode(_body(event_type={"a": 1})), "unknown event_type \"{'a': 1}\"", id="object-type"),
    pytest.param(_encode(_body(data=None)), "data must be an object", id="data-null"),
    pytest.param(_encode(_body(data=["user-1"])), "data must be an object", id="data-list"),
    pytest.param(_encode(_body(data={"name": "X"})), "missing user_id", id="no-user-id"),
    pytest.param(_encode(_body(data={"user_id": 7})), "missing user_id", id="int-user-id"),
    pytest.param(_encode(_body(data={"user_id": ""})), "missing user_id", id="empty-user-id"),
    pytest.param(_encode(_body(data={"user_id": "u" * 65})), "user_id longer than 64 characters", id="user-id-65"),
    # json.dumps escapes NUL as \u0000: it reaches the parser as a real NUL, which
    # PostgreSQL refuses in text (the cancel query would fail forever).
    pytest.param(_encode(_body(data={"user_id": "user\x00-1"})), "user_id contains a control character", id="nul"),
    pytest.param(_encode(_body(data={"user_id": "u\x1b[2J"})), "user_id contains a control character", id="escape"),
    pytest.param(_encode(_body(data={"user_id": "u\x85"})), "user_id contains a control character", id="c1-control"),
    pytest.param(
        b'{"event_id": "6f1c2b9e-3d4a-4e5f-8a7b-9c0d1e2f3a4b", "event_type": "user.updated", '
        b'"timestamp": "2026-11-01T12:00:00Z", "data": {"user_id": "user-1", "name": "Ada \\ud800"}}',
        "name is not valid Unicode (lone surrogate)",
        id="lone-surrogate-name",
    ),
    pytest.param(
        b'{"event_id": "6f1c2b9e-3d4a-4e5f-8a7b-9c0d1e2f3a4b", "event_type": "user.updated", '
        b'"timestamp": "2026-11-01T12:00:00Z", "data": {"user_id": "u\\udfff"}}',
        "user_id is not valid Unicode (lone surrogate)",
        id="lone-surrogate-user-id",
    ),
    pytest.param(
        _encode(_body(timestamp="2099-01-01T00:00:00Z")),
        # fixed "now" below: 2026-11-01T12:00:00Z
        "timestamp is 2277374400s in the future (more than USER_EVENT_MAX_FUTURE_SKEW_SECONDS=300)",
        id="far-future",
    ),
    pytest.param(
        _encode({k: v for k, v in _body().items() if k != "timestamp"}),
        "timestamp must be an RFC 3339 string",
        id="no-timestamp",
    ),
    pytest.param(_encode(_body(timestamp=1767225600)), "timestamp must be an RFC 3339 string", id="epoch-timestamp"),
    pytest.param(
        _encode(_body(timestamp="yesterday")),
        "timestamp is not an RFC 3339 timestamp: 'yesterday'",
        id="bad-timestamp",
    ),
    pytest.param(_encode(_body(timestamp="2026-11-01T12:00:00")), "timestamp has no time zone", id="naive-timestamp"),
    pytest.param(
        _encode(_body(event_type="user.created", data=_data(name="Ada", status="active"))),
        "email is required for user.created",
        id="created-without-email",
    ),
    pytest.param(
        _encode(_body(event_type="user.created", data=_data(email="a@example.com", name=None, status="active"))),
        "name is required for user.created",
        id="created-null-name",
    ),
    pytest.param(_encode(_body(data=_data(name=42))), "name must be a string", id="int-name"),
    pytest.param(_encode(_body(data=_data(email=["a@example.com"]))), "email must be a string", id="list-email"),
    pytest.param(
        _encode(_body(data=_data(updated_at="last tuesday"))),
        "updated_at is not an RFC 3339 timestamp: 'last tuesday'",
        id="bad-updated-at",
    ),
    pytest.param(
        _encode(_body(event_type="user.deleted", data=_data(deleted_at="2026-11-01T12:00:00"))),
        "deleted_at has no time zone",
        id="naive-deleted-at",
    ),
    pytest.param(
        _encode(_body(data=_data(status="banned"))), "status must be one of ['active', 'inactive']", id="bad-status"
    ),
]


@pytest.mark.parametrize(("value", "reason"), BAD)
def test_bad_message_is_refused_with_its_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(BadMessage) as raised:
        event_parse(value, now_ms=NOW_MS)

    assert raised.value.reason == reason
    assert str(raised.value) == reason


def test_event_type_must_match_its_topic() -> None:
    with pytest.raises(BadMessage) as raised:
        event_parse(_encode(_body(event_type="user.created")), topic_kind="updated")

    assert raised.value.reason == "event_type user.created on the updated topic"


def test_a_timestamp_within_the_allowed_skew_is_accepted(settings: Any) -> None:
    # given the consumer's clock 5 minutes behind the producer's, and the default skew of 300 s
    settings.USER_EVENT_MAX_FUTURE_SKEW_SECONDS = 300
    value = _encode(_body(timestamp="2026-11-01T12:05:00Z"))

    # then exactly 300 s ahead is accepted and one millisecond more is refused
    assert event_parse(value, now_ms=NOW_MS).timestamp_ms == NOW_MS + 300_000
    with pytest.raises(BadMessage) as raised:
        event_parse(value, now_ms=NOW_MS - 1)
    assert raised.value.reason == "timestamp is 300s in the future (more than USER_EVENT_MAX_FUTURE_SKEW_SECONDS=300)"


def test_the_skew_is_configurable(settings: Any) -> None:
    settings.USER_EVENT_MAX_FUTURE_SKEW_SECONDS = 0

    with pytest.raises(BadMessage) as raised:
        event_parse(_encode(_body(timestamp="2026-11-01T12:00:01Z")), now_ms=NOW_MS)

    assert raised.value.reason == "timestamp is 1s in the future (more than USER_EVENT_MAX_FUTURE_SKEW_SECONDS=0)"


def test_a_future_timestamp_is_measured_against_the_real_clock_by_default() -> None:
    with pytest.raises(BadMessage, match=r"^timestamp is \d+s in the future"):
        event_parse(_encode(_body(timestamp="2099-01-01T00:00:00Z")))


# What no JSON Schema can say: a lone surrogate (valid JSON, not valid Unicode) and a time
# too far ahead of the consumer's clock. event_parse checks these by hand.
BEYOND_THE_SCHEMA = {"lone-surrogate-name", "lone-surrogate-user-id", "far-future"}


def _schema_refuses(value: bytes | None) -> bool:
    try:
        body = json.loads(value or b"")
    except (ValueError, RecursionError):
        return True  # not JSON: no schema can even be applied
    event_type = body.get("event_type") if isinstance(body, dict) else None
    if event_type not in contract.USER_EVENT_TYPES:
        return True  # no schema for it: refused as unknown
    return contract.first_error(event_type, body) is not None


@pytest.mark.parametrize("value", [pytest.param(p.values[0], id=p.id) for p in BAD if p.id not in BEYOND_THE_SCHEMA])
def test_the_hand_checks_refuse_nothing_the_schema_accepts(value: bytes | None) -> None:
    # One source of truth: each hand check is a plainer-worded refusal the schema makes too,
    # except the checks beyond what a schema can say.
    assert _schema_refuses(value)


def test_an_event_only_the_schema_refuses_is_refused_with_the_schema_reason() -> None:
    with pytest.raises(BadMessage) as raised:
        event_parse(_encode(_body(version="2.0")), now_ms=NOW_MS)

    assert raised.value.reason == "schema: version: '1.0' was expected"


def test_the_good_events_here_match_the_schema() -> None:
    for event_type, data in [
        ("user.created", _data(email="a@example.com", name="Ada", status="active", created_at=None)),
        ("user.updated", _data(name=None, status=None)),
        ("user.deleted", _data(deleted_at="2026-11-01T12:00:00Z", reason=None, extra="ignored")),
    ]:
        body = _body(event_type=event_type, data=data)
        assert contract.first_error(event_type, body) is None
        assert event_parse(_encode(body), now_ms=NOW_MS).kind == event_type.removeprefix("user.")
