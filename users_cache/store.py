"""The Redis replica of users, and the atomic "apply once" of a user event.

A user is a Redis hash `users:user:<user_id>` (fields: user_id, email, name,
status, created_at, updated_at, deleted_at, deleted, _ts). A hash makes a
partial update a plain HSET of the fields present: absent fields keep their
values. `_ts` is the timestamp (epoch ms) of the newest event applied.

The hash of a live user never expires: this is a replica of the user stream,
not a cache, and a user with no event for a year still exists. Only a deleted
user's tombstone and the processed-event markers expire (PROCESSED_TTL_SECONDS).

The Lua script applies a run of events: for each, its check and writes and, for
created/updated, the memory of its id, in one atomic step, so a crash can
neither lose an event (nothing stored, offset not committed, it comes again)
nor apply it twice. A delete is split: tombstone first, then (the caller)
cancels orders, then `event_mark_processed`, so a crash in between redoes the
cancel on redelivery.

This module is the one home of the replica's Redis connections (its own
database REDIS_USERS_DB): the "users" cache alias for the consumer and the
tools, "users_lookup" for user_read, which runs on a request's path and so
gives up after REDIS_REQUEST_TIMEOUT_MS.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

from django_redis import get_redis_connection
from redis import Redis
from redis.exceptions import RedisError

from orders_project.errors import ServiceUnavailableError

PROCESSED_TTL_SECONDS = 7 * 24 * 3600
# Events per call of the apply script (events_apply).
APPLY_RUN_MAX = 100
REDIS_ALIAS = "users"
LOOKUP_ALIAS = "users_lookup"

_APPLY_SCRIPT = """
-- Applies a run of events in order, each as its own check-and-write.
-- KEYS: per event, its user hash and its processed-event marker (KEYS[2n-1], KEYS[2n]).
-- ARGV[1]: a JSON array, per event [kind (created|updated|deleted), event time in epoch ms,
--   1 = mark the event processed now, 1 = replay (apply even if marked; a rebuild),
--   [field, value, ...]].
-- ARGV[2]: tombstone and marker TTL in seconds.
-- Returns each event's outcome, in order.
local ttl = tonumber(ARGV[2])
local outcomes = {}
for n, event in ipairs(cjson.decode(ARGV[1])) do
  local user, marker = KEYS[2 * n - 1], KEYS[2 * n]
  local kind, ts, mark, replay, fields = event[1], event[2], event[3] == 1, event[4] == 1, event[5]
  local seen = redis.call('EXISTS', marker) == 1
  if seen and not replay then
    outcomes[n] = 'duplicate'
  else
    local stored_ts = tonumber(redis.call('HGET', user, '_ts') or '-1')
    local deleted = redis.call('HGET', user, 'deleted') == '1'
    local outcome = 'applied'
    if kind ~= 'deleted' and (ts < stored_ts or deleted) then
      -- Older than what is stored (topics are not ordered with each other, so a
      -- user.created can arrive after an update), or after the user was deleted:
      -- fill only fields still missing, never overwrite newer data, never resurrect.
      outcome = 'stale'
      for i = 1, #fields, 2 do
        redis.call('HSETNX', user, fields[i], fields[i + 1])
      end
    else
      -- A delete always applies: it is final, whatever arrived before it.
      if #fields > 0 then
        redis.call('HSET', user, unpack(fields))
      end
      if kind == 'deleted' then
        redis.call('HSET', user, 'deleted', '1', 'status', 'deleted')
      end
      redis.call('HSET', user, '_ts', tostring(math.max(ts, stored_ts)))
    end
    if redis.call('HGET', user, 'deleted') == '1' then
      -- A tombstone lives as long as event ids are remembered, so a user.created
      -- that is days late still finds it and cannot resurrect the user.
      redis.call('EXPIRE', user, ttl)
    else
      -- A live user never expires (PERSIST also clears a TTL an older version set).
      redis.call('PERSIST', user)
    end
    if mark then
      redis.call('SET', marker, outcome, 'EX', ttl)
    end
    if seen then
      outcome = 'replayed'
    end
    outcomes[n] = outcome
  end
end
return outcomes
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
    """One event's part of an apply script call, built from the event without I/O (see events_apply)."""

    keys: tuple[str, str]
    spec: tuple[str, int, int, int, list[str]]  # kind, event time (ms), mark, replay, field/value pairs


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
    """The apply script's part for one event (arguments as event_apply's)."""
    pairs: list[str] = []
    for name, value in fields.items():
        pairs += [name, value]
    return ApplyCommand(
        keys=(_user_key(user_id), _processed_key(event_id)),
        spec=(kind, timestamp_ms, int(mark), int(replay), pairs),
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
    """Run one apply (event_apply_command's) on its own; its outcome. Raises RedisError.
    (One EVALSHA, where events_apply's pipeline would add a SCRIPT EXISTS round trip.)"""
    client = redis_client()
    script = client.register_script(_APPLY_SCRIPT)
    outcomes = script(keys=command.keys, args=[_specs_json([command]), PROCESSED_TTL_SECONDS])
    return _text(outcomes[0])


def events_apply(commands: Sequence[ApplyCommand]) -> list[str]:
    """Run many applies in one round trip; their outcomes, in order. Raises RedisError.

    The events go to the script APPLY_RUN_MAX at a time: each call is one JSON
    argument and two keys per event, which redis-py packs far faster than ~20
    arguments per event (packing them was a third of the consumer's CPU), and
    holds Redis for about a millisecond (1.1 ms per 100 created events here, in
    Valkey's commandstats; a request's Redis deadline is 50 ms). The calls go in one pipeline, not
    a transaction: Redis runs them one after the other, in this order, on one
    connection, and each event's check-and-write sees the ones before it, so the
    outcomes and the stored state are those of calling event_apply for each in
    turn. If the connection fails midway, a prefix of the calls may have been
    applied: redoing them all is safe, as each marked event then says
    "duplicate". (redis-py adds one SCRIPT EXISTS round trip per pipeline, to
    load the script if the server lost it.)
    """
    if not commands:
        return []
    client = redis_client()
    script = client.register_script(_APPLY_SCRIPT)
    with client.pipeline(transaction=False) as pipeline:
        for start in range(0, len(commands), APPLY_RUN_MAX):
            run = commands[start : start + APPLY_RUN_MAX]
            keys = [key for command in run for key in command.keys]
            script(keys=keys, args=[_specs_json(run), PROCESSED_TTL_SECONDS], client=pipeline)
        return [_text(outcome) for outcomes in pipeline.execute() for outcome in outcomes]


def _specs_json(commands: Sequence[ApplyCommand]) -> str:
    """The apply script's ARGV[1] for these events (UTF-8 as it is: the script's cjson reads it)."""
    return json.dumps([command.spec for command in commands], ensure_ascii=False, separators=(",", ":"))


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
