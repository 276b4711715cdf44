"""The Redis replica of users, and the atomic "apply once" of a user event.

A user is a Redis hash `users:user:<user_id>` (fields: user_id, email, name,
status, created_at, updated_at, deleted_at, deleted, _ts). A hash makes a
partial update a plain HSET of the fields present: absent fields keep their
values. `_ts` is the timestamp (epoch ms) of the newest event applied.

The hash of a live user never expires: this is a replica of the user stream,
not a cache, and a user with no event for a year still exists. Only a deleted
user's tombstone and the processed-event markers expire (PROCESSED_TTL_SECONDS).

The Lua script applies an event and, for created/updated, remembers its id in
the same atomic step, so a crash can neither lose an event (nothing stored,
offset not committed, it comes again) nor apply it twice. A delete is split:
tombstone first, then (the caller) cancels orders, then `event_mark_processed`,
so a crash in between redoes the cancel on redelivery.

This module is the one home of the replica's Redis connections (its own
database REDIS_USERS_DB): the "users" cache alias for the consumer and the
tools, "users_lookup" for user_read, which runs on a request's path and so
gives up after REDIS_REQUEST_TIMEOUT_MS.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django_redis import get_redis_connection
from redis import Redis
from redis.exceptions import RedisError

from orders_project.errors import ServiceUnavailableError

PROCESSED_TTL_SECONDS = 7 * 24 * 3600
REDIS_ALIAS = "users"
LOOKUP_ALIAS = "users_lookup"

_APPLY_SCRIPT = """
-- KEYS[1] user hash, KEYS[2] processed-event marker
-- ARGV[1] kind (created|updated|deleted), ARGV[2] event time in epoch ms,
-- ARGV[3] tombstone and marker TTL, ARGV[4] '1' = mark the event processed now,
-- ARGV[5] '1' = replay (apply even if marked; a rebuild), ARGV[6..] field/value pairs
local seen = redis.call('EXISTS', KEYS[2]) == 1
if seen and ARGV[5] ~= '1' then
  return 'duplicate'
end
local kind = ARGV[1]
local ts = tonumber(ARGV[2])
local stored_ts = tonumber(redis.call('HGET', KEYS[1], '_ts') or '-1')
local deleted = redis.call('HGET', KEYS[1], 'deleted') == '1'
local outcome = 'applied'
if kind ~= 'deleted' and (ts < stored_ts or deleted) then
  -- Older than what is stored (topics are not ordered with each other, so a
  -- user.created can arrive after an update), or after the user was deleted:
  -- fill only fields still missing, never overwrite newer data, never resurrect.
  outcome = 'stale'
  for i = 6, #ARGV, 2 do
    redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  end
else
  -- A delete always applies: it is final, whatever arrived before it.
  if #ARGV > 5 then
    redis.call('HSET', KEYS[1], unpack(ARGV, 6))
  end
  if kind == 'deleted' then
    redis.call('HSET', KEYS[1], 'deleted', '1', 'status', 'deleted')
  end
  redis.call('HSET', KEYS[1], '_ts', tostring(math.max(ts, stored_ts)))
end
if redis.call('HGET', KEYS[1], 'deleted') == '1' then
  -- A tombstone lives as long as event ids are remembered, so a user.created
  -- that is days late still finds it and cannot resurrect the user.
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
else
  -- A live user never expires (PERSIST also clears a TTL an older version set).
  redis.call('PERSIST', KEYS[1])
end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[2], outcome, 'EX', tonumber(ARGV[3]))
end
if seen then
  return 'replayed'
end
return outcome
"""


@dataclass(frozen=True)
class CachedUser:
    user_id: str
    email: str | None
    name: str | None
    status: str | None
    deleted: bool


def _user_key(user_id: str) -> str:
    return f"users:user:{user_id}"


def _processed_key(event_id: str) -> str:
    return f"users:event:{event_id}"


def redis_client() -> Redis:
    """The replica's Redis connection (pooled by django-redis)."""
    return get_redis_connection(REDIS_ALIAS)


def event_is_processed(event_id: str) -> bool:
    return bool(redis_client().exists(_processed_key(event_id)))


@dataclass(frozen=True)
class ApplyCommand:
    """One call of the apply script, built from one event without I/O (see events_apply)."""

    keys: tuple[str, str]
    args: tuple[str | int, ...]


def event_apply_command(
    *,
    event_id: str,
    user_id: str,
    kind: str,
    timestamp_ms: int,
    fields: dict[str, str],
    mark: bool = True,
    replay: bool = False,
) -> ApplyCommand:
    """The apply script's call for one event (arguments as event_apply's)."""
    pairs: list[str] = []
    for name, value in fields.items():
        pairs += [name, value]
    return ApplyCommand(
        keys=(_user_key(user_id), _processed_key(event_id)),
        args=(kind, timestamp_ms, PROCESSED_TTL_SECONDS, int(mark), int(replay), *pairs),
    )


def event_apply(
    *,
    event_id: str,
    user_id: str,
    kind: str,
    timestamp_ms: int,
    fields: dict[str, str],
    mark: bool = True,
    replay: bool = False,
) -> str:
    """Apply one user event atomically. Raises RedisError.

    Returns "applied", "stale", "duplicate" (already processed: nothing done) or,
    with `replay`, "replayed" (already processed, applied again: the merge is
    idempotent, so a rebuild restores a user whose hash was lost while its
    markers lived). `mark=False` leaves the event unmarked: the caller marks it
    with event_mark_processed once its other effects are stored (deletes).
    """
    command = event_apply_command(
        event_id=event_id,
        user_id=user_id,
        kind=kind,
        timestamp_ms=timestamp_ms,
        fields=fields,
        mark=mark,
        replay=replay,
    )
    return command_apply(command)


def command_apply(command: ApplyCommand) -> str:
    """Run one apply call (event_apply_command's) on its own; its outcome. Raises RedisError."""
    client = redis_client()
    script = client.register_script(_APPLY_SCRIPT)
    return _text(script(keys=command.keys, args=command.args))


def events_apply(commands: Sequence[ApplyCommand]) -> list[str]:
    """Run many apply calls in one round trip; their outcomes, in order. Raises RedisError.

    A pipeline, not a transaction: Redis runs the calls one after the other, in
    this order, on one connection, so the outcomes and the stored state are those
    of calling event_apply for each in turn (each call is atomic on its own). If
    the connection fails midway, a prefix of the calls may have been applied:
    redoing them all is safe, as each marked event then says "duplicate".
    (redis-py adds one SCRIPT EXISTS round trip per pipeline, to load the script
    if the server lost it.)
    """
    if not commands:
        return []
    client = redis_client()
    script = client.register_script(_APPLY_SCRIPT)
    with client.pipeline(transaction=False) as pipeline:
        for command in commands:
            script(keys=command.keys, args=command.args, client=pipeline)
        return [_text(outcome) for outcome in pipeline.execute()]


def event_mark_processed(*, event_id: str, outcome: str) -> None:
    """Remember that an event's effects are all stored (for PROCESSED_TTL_SECONDS)."""
    redis_client().set(_processed_key(event_id), outcome, ex=PROCESSED_TTL_SECONDS)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def user_read(user_id: str) -> CachedUser | None:
    """The replicated user, or None. Raises ServiceUnavailableError when Redis is unreachable."""
    try:
        raw = get_redis_connection(LOOKUP_ALIAS).hgetall(_user_key(user_id))
    except RedisError as exc:
        raise ServiceUnavailableError("The user cache is unavailable; retry shortly.") from exc
    if not raw:
        return None
    data = {_text(key): _text(value) for key, value in raw.items()}
    return CachedUser(
        user_id=data.get("user_id", user_id),
        email=data.get("email"),
        name=data.get("name"),
        status=data.get("status"),
        deleted=data.get("deleted") == "1",
    )
