"""The users_cache door for other apps: look a user up in the Redis copy; the consumer's status."""

from django.conf import settings
from redis.exceptions import RedisError

from orders_project.errors import ServiceUnavailableError
from users_cache.status import ConsumerStatus, status_read
from users_cache.store import CachedUser, user_read

__all__ = ["CachedUser", "ConsumerStatus", "consumer_status_get", "user_get"]


def user_get(*, user_id: str) -> CachedUser | None:
    """The cached user or None if unknown. Raises ServiceUnavailableError if Redis is down."""
    return user_read(user_id)


def consumer_status_get(*, group_id: str | None = None) -> ConsumerStatus:
    """Lag and last event of the user-event consumers (group KAFKA_CONSUMER_GROUP_ID), as they
    last reported (users_cache.status). Raises ServiceUnavailableError if Redis is down."""
    try:
        return status_read(group_id=group_id or settings.KAFKA_CONSUMER_GROUP_ID)
    except RedisError as exc:
        raise ServiceUnavailableError("Redis (the user cache) is unavailable.") from exc
