"""The Lua script against real Redis: apply once, merge partial updates, keep order, never resurrect."""

import uuid
from typing import Any

import pytest
import redis

from orders_project.errors import ServiceUnavailableError
from tests.support.users import at, ms, user_hash, users_unreachable
from users_cache.store import (
    PROCESSED_TTL_SECONDS,
    CachedUser,
    event_apply,
    event_is_processed,
    event_mark_processed,
    user_read,
)

USER = "user-1"


def _apply(kind: str, seconds: float, event_id: str | None = None, **fields: str) -> str:
    return event_apply(
        event_id=event_id or str(uuid.uuid4()),
        user_id=USER,
        kind=kind,
        timestamp_ms=ms(at(seconds)),
        fields={"user_id": USER, **fields},
    )


def _create(seconds: float = 0, **fields: str) -> str:
    given = {"email": "ada@example.com", "name": "Ada", "status": "active", "created_at": "2026-11-01T12:00:00Z"}
    return _apply("created", seconds, **{**given, **fields})


def test_created_stores_a_live_user_without_expiry_and_remembers_the_event(redis_db: redis.Redis) -> None:
    event_id = str(uuid.uuid4())

    outcome = _apply("created", 0, event_id=event_id, email="ada@example.com", name="Ada", status="active")

    assert outcome == "applied"
    assert user_hash(redis_db, USER) == {
        "user_id": USER,
        "email": "ada@example.com",
        "name": "Ada",
        "status": "active",
        "_ts": str(ms(at(0))),
    }
    assert redis_db.ttl(f"users:user:{USER}") == -1  # a replica, not a cache: no expiry
    assert redis_db.get(f"users:event:{event_id}") == b"applied"
    assert PROCESSED_TTL_SECONDS - 5 <= redis_db.ttl(f"users:event:{event_id}") <= PROCESSED_TTL_SECONDS
    assert event_is_processed(event_id)
    assert not event_is_processed(str(uuid.uuid4()))


def test_a_live_user_outlives_user_cache_ttl(redis_db: redis.Redis, settings: Any) -> None:
    # given the compatibility setting at its smallest
    settings.USER_CACHE_TTL = 1

    # when a user is created and updated
    _create(0)
    _apply("updated", 10, name="Ada L.")

    # then its record has no expiry at all, whatever USER_CACHE_TTL says
    assert redis_db.ttl(f"users:user:{USER}") == -1
    assert user_read(USER) == CachedUser(
        user_id=USER, email="ada@example.com", name="Ada L.", status="active", deleted=False
    )


def test_a_user_stored_with_a_ttl_by_an_older_version_loses_it_on_its_next_event(redis_db: redis.Redis) -> None:
    # given a user the previous version stored with a 24 h expiry
    _create(0)
    redis_db.expire(f"users:user:{USER}", 86400)

    # when any event of that user is applied, even a stale one
    assert _apply("updated", -10, name="Older") == "stale"

    # then the expiry is gone
    assert redis_db.ttl(f"users:user:{USER}") == -1


def test_replay_applies_a_processed_event_again_and_says_so(redis_db: redis.Redis) -> None:
    # given a user whose record was lost while its event marker lived on
    event_id = str(uuid.uuid4())
    _create(0)
    assert _apply("updated", 10, event_id=event_id, name="Ada L.") == "applied"
    redis_db.delete(f"users:user:{USER}")

    # when a rebuild replays the update; a normal delivery would skip it
    assert _apply("updated", 10, event_id=event_id, name="Ada L.") == "duplicate"
    outcome = event_apply(
        event_id=event_id,
        user_id=USER,
        kind="updated",
        timestamp_ms=ms(at(10)),
        fields={"user_id": USER, "name": "Ada L."},
        replay=True,
    )

    # then the user is back
    assert outcome == "replayed"
    assert user_hash(redis_db, USER) == {"user_id": USER, "name": "Ada L.", "_ts": str(ms(at(10)))}


def test_a_delete_applied_without_mark_stays_unprocessed_until_marked(redis_db: redis.Redis) -> None:
    event_id = str(uuid.uuid4())
    _create(0)

    outcome = event_apply(
        event_id=event_id, user_id=USER, kind="deleted", timestamp_ms=ms(at(30)), fields={"user_id": USER}, mark=False
    )

    assert outcome == "applied"
    assert user_read(USER).deleted  # type: ignore[union-attr]
    assert not event_is_processed(event_id)
    event_mark_processed(event_id=event_id, outcome=outcome)
    assert redis_db.get(f"users:event:{event_id}") == b"applied"
    assert PROCESSED_TTL_SECONDS - 5 <= redis_db.ttl(f"users:event:{event_id}") <= PROCESSED_TTL_SECONDS


def test_duplicate_event_has_one_effect(redis_db: redis.Redis) -> None:
    _create(0)
    event_id = str(uuid.uuid4())
    assert _apply("updated", 10, event_id=event_id, name="Ada L.") == "applied"
    # Someone else's newer change, then the first update is redelivered.
    assert _apply("updated", 20, name="Ada Lovelace") == "applied"
    before = redis_db.dump(f"users:user:{USER}")

    outcome = _apply("updated", 10, event_id=event_id, name="Ada L.")

    assert outcome == "duplicate"
    assert redis_db.dump(f"users:user:{USER}") == before
    assert user_hash(redis_db, USER)["name"] == "Ada Lovelace"


def test_duplicate_does_not_even_refresh_the_ttl(redis_db: redis.Redis) -> None:
    event_id = str(uuid.uuid4())
    _apply("created", 0, event_id=event_id, email="a@example.com", name="A", status="active")
    redis_db.expire(f"users:user:{USER}", 100)

    assert _apply("created", 0, event_id=event_id, email="a@example.com", name="A", status="active") == "duplicate"

    assert redis_db.ttl(f"users:user:{USER}") <= 100


def test_partial_update_merges_and_keeps_absent_fields(redis_db: redis.Redis) -> None:
    _create(0)

    outcome = _apply("updated", 10, name="Ada L.", updated_at="2026-11-01T12:00:10Z")

    assert outcome == "applied"
    assert user_hash(redis_db, USER) == {
        "user_id": USER,
        "email": "ada@example.com",
        "name": "Ada L.",
        "status": "active",
        "created_at": "2026-11-01T12:00:00Z",
        "updated_at": "2026-11-01T12:00:10Z",
        "_ts": str(ms(at(10))),
    }


def test_out_of_order_update_is_ignored(redis_db: redis.Redis) -> None:
    _create(0)
    assert _apply("updated", 20, name="Newest", status="inactive") == "applied"

    outcome = _apply("updated", 10, name="Older", status="active")

    assert outcome == "stale"
    stored = user_hash(redis_db, USER)
    assert (stored["name"], stored["status"], stored["_ts"]) == ("Newest", "inactive", str(ms(at(20))))


def test_stale_event_only_fills_fields_still_missing(redis_db: redis.Redis) -> None:
    # The update overtook the create (different topics): the create must not undo it.
    assert _apply("updated", 10, name="Renamed") == "applied"

    outcome = _create(0)

    assert outcome == "stale"
    assert user_hash(redis_db, USER) == {
        "user_id": USER,
        "email": "ada@example.com",
        "name": "Renamed",
        "status": "active",
        "created_at": "2026-11-01T12:00:00Z",
        "_ts": str(ms(at(10))),
    }


def test_delete_marks_the_user_deleted(redis_db: redis.Redis) -> None:
    _create(0)

    outcome = _apply("deleted", 30, deleted_at="2026-11-01T12:00:30Z", reason="account_closed")

    assert outcome == "applied"
    assert user_hash(redis_db, USER) == {
        "user_id": USER,
        "email": "ada@example.com",
        "name": "Ada",
        "status": "deleted",
        "deleted": "1",
        "created_at": "2026-11-01T12:00:00Z",
        "deleted_at": "2026-11-01T12:00:30Z",
        "reason": "account_closed",
        "_ts": str(ms(at(30))),
    }
    assert user_read(USER) == CachedUser(
        user_id=USER, email="ada@example.com", name="Ada", status="deleted", deleted=True
    )


def test_delete_applies_even_when_older_than_the_stored_data(redis_db: redis.Redis) -> None:
    _create(0)
    _apply("updated", 50, name="Later")

    assert _apply("deleted", 30) == "applied"

    stored = user_hash(redis_db, USER)
    assert (stored["deleted"], stored["status"], stored["name"], stored["_ts"]) == (
        "1",
        "deleted",
        "Later",
        str(ms(at(50))),
    )


def test_delete_of_an_unknown_user_leaves_a_tombstone(redis_db: redis.Redis) -> None:
    assert _apply("deleted", 30) == "applied"

    assert user_read(USER) == CachedUser(user_id=USER, email=None, name=None, status="deleted", deleted=True)


@pytest.mark.parametrize("seconds", [10, 60], ids=["older", "newer"])
def test_late_created_does_not_resurrect_a_deleted_user(redis_db: redis.Redis, seconds: float) -> None:
    _create(0)
    _apply("deleted", 30)

    outcome = _create(seconds, status="active", name="Back again")

    assert outcome == "stale"
    stored = user_hash(redis_db, USER)
    assert (stored["deleted"], stored["status"], stored["name"]) == ("1", "deleted", "Ada")
    assert user_read(USER).deleted  # type: ignore[union-attr]


def test_update_after_delete_is_ignored(redis_db: redis.Redis) -> None:
    _create(0)
    _apply("deleted", 30)

    assert _apply("updated", 60, status="active", name="Zombie") == "stale"

    stored = user_hash(redis_db, USER)
    assert (stored["status"], stored["name"], stored["_ts"]) == ("deleted", "Ada", str(ms(at(30))))


def test_user_read_of_unknown_user_is_none() -> None:
    assert user_read("nobody") is None


def test_user_read_with_redis_unreachable_raises_service_unavailable(settings: Any) -> None:
    # A real closed port, not a mock: the connection is refused.
    settings.CACHES = users_unreachable(settings.CACHES)

    with pytest.raises(ServiceUnavailableError):
        user_read(USER)


def test_a_tombstone_lives_as_long_as_event_ids_are_remembered(redis_db: redis.Redis) -> None:
    # given a deleted user
    _create(0)
    _apply("deleted", 10, deleted_at="2026-11-01T12:00:10Z", reason="gdpr")

    # then its hash expires with the event markers: a user.created days late must still find it
    assert PROCESSED_TTL_SECONDS - 5 <= redis_db.ttl(f"users:user:{USER}") <= PROCESSED_TTL_SECONDS
