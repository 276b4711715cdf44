"""The Redis copy of users, and the atomic "apply once" of a user event.

A user is a Redis hash `users:user:<user_id>` (fields: user_id, email, name,
status, created_at, updated_at, deleted_at, deleted, _ts). A hash makes a
partial update a plain HSET of the fields present: absent fields keep their
values. `_ts` is the timestamp (epoch ms) of the newest event applied.

The Lua script applies an event and remembers its id in one atomic step, so a
crash can neither lose an event (nothing stored, offset not committed, it comes
again) nor apply it twice (the id is stored with the effect).
"""

from dataclasses import dataclass

from django.conf import settings
from django_redis import get_redis_connection
from redis import Redis
from redis.exceptions import RedisError

from orders_project.errors import ServiceUnavailableError

PROCESSED_TTL_SECONDS = 7 * 24 * 3600

_APPLY_SCRIPT = """
-- KEYS[1] user hash, KEYS[2] processed-event marker
-- ARGV[1] kind (created|updated|deleted), ARGV[2] event time in epoch ms,
-- ARGV[3] user TTL, ARGV[4] marker TTL, ARGV[5..] field/value pairs
if redis.call('EXISTS', KEYS[2]) == 1 then
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
  for i = 5, #ARGV, 2 do
    redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  end
else
  -- A delete always applies: it is final, whatever arrived before it.
  if #ARGV > 4 then
    redis.call('HSET', KEYS[1], unpack(ARGV, 5))
  end
  if kind == 'deleted' then
    redis.call('HSET', KEYS[1], 'deleted', '1', 'status', 'deleted')
  end
  redis.call('HSET', KEYS[1], '_ts', tostring(math.max(ts, stored_ts)))
end
-- A deleted user's tombstone lives as long as event ids are remembered, so a
-- user.created that is days late still finds it and cannot resurrect the user.
local ttl = tonumber(ARGV[3])
if redis.call('HGET', KEYS[1], 'deleted') == '1' then
  ttl = math.max(ttl, tonumber(ARGV[4]))
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], outcome, 'EX', tonumber(ARGV[4]))
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


def _redis() -> Redis:
    return get_redis_connection("default")


def event_is_processed(event_id: str) -> bool:
    return bool(_redis().exists(_processed_key(event_id)))


def event_apply(*, event_id: str, user_id: str, kind: str, timestamp_ms: int, fields: dict[str, str]) -> str:
    """Apply one user event atomically. Returns "applied", "stale" or "duplicate". Raises RedisError."""
    pairs: list[str] = []
    for name, value in fields.items():
        pairs += [name, value]
    client = _redis()
    script = client.register_script(_APPLY_SCRIPT)
    outcome = script(
        keys=[_user_key(user_id), _processed_key(event_id)],
        args=[kind, timestamp_ms, settings.USER_CACHE_TTL, PROCESSED_TTL_SECONDS, *pairs],
    )
    return _text(outcome)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def user_read(user_id: str) -> CachedUser | None:
    """The cached user, or None. Raises ServiceUnavailableError when Redis is unreachable."""
    try:
        raw = _redis().hgetall(_user_key(user_id))
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
