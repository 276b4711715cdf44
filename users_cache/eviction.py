"""Warn at start when the Redis holding the user replica or the Celery broker may evict keys.

An evicting `maxmemory-policy` lets Redis drop a live user (orders for that
customer are then refused as unknown) or a queued task when memory runs out.
Production runs both on a Redis with `noeviction` (Terraform sets it); this
check makes a wrong setting visible in the first log lines of every process.

Called once from UsersCacheConfig.ready(), which runs in every process kind
(gunicorn, the Celery worker and beat, manage.py commands). It never raises:
a Redis that is down at start is the health checks' business, not a reason to
refuse to start.
"""

import logging

from django.conf import settings
from redis import Redis
from redis.exceptions import RedisError, ResponseError

from users_cache.store import redis_client

logger = logging.getLogger(__name__)

SAFE_POLICY = "noeviction"
# Seconds: a start-up check must not hold up a process behind an unreachable Redis.
CHECK_TIMEOUT_SECONDS = 2


def maxmemory_policy(client: Redis) -> str | None:
    """The server's maxmemory-policy, or None when it will not say.

    Managed Redis services often refuse CONFIG (disabled or renamed command,
    ACL): INFO memory reports the same value. RedisError other than a refusal
    (unreachable) propagates.
    """
    try:
        answer = client.config_get("maxmemory-policy")
        if "maxmemory-policy" in answer:
            return str(answer["maxmemory-policy"])
    except ResponseError:
        pass
    try:
        policy = client.info("memory").get("maxmemory_policy")
    except ResponseError:
        return None
    return None if policy is None else str(policy)


def _targets() -> list[tuple[str, Redis]]:
    targets = [("user replica", redis_client())]
    broker = settings.CELERY_BROKER_URL
    if broker.startswith(("redis://", "rediss://")):
        options = {"socket_connect_timeout": CHECK_TIMEOUT_SECONDS, "socket_timeout": CHECK_TIMEOUT_SECONDS}
        targets.append(("Celery broker", Redis.from_url(broker, **options)))
    return targets


def redis_eviction_check() -> None:
    """Log a WARNING for each of the replica's and broker's Redis servers with an evicting policy."""
    seen: set[tuple[str, int]] = set()
    for role, client in _targets():
        kwargs = client.connection_pool.connection_kwargs
        server = (str(kwargs.get("host")), int(kwargs.get("port") or 0))
        try:
            if server in seen:
                continue
            seen.add(server)
            policy = maxmemory_policy(client)
        except RedisError as exc:
            logger.info(
                "Redis for the %s at %s:%d did not answer (%r); maxmemory-policy not checked", role, *server, exc
            )
            continue
        if policy is None:
            logger.info(
                "Redis for the %s at %s:%d refuses both CONFIG GET and INFO memory; maxmemory-policy not checked",
                role,
                *server,
            )
        elif policy != SAFE_POLICY:
            logger.warning(
                "Redis for the %s at %s:%d has maxmemory-policy %s: under memory pressure it can drop live users "
                "or queued tasks. Use noeviction there (docs/architecture.md, 'User replica').",
                role,
                *server,
                policy,
            )
