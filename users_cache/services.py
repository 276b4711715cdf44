"""The users_cache door for other apps: look a user up in the Redis copy."""

from users_cache.store import CachedUser, user_read

__all__ = ["CachedUser", "user_get"]


def user_get(*, user_id: str) -> CachedUser | None:
    """The cached user or None if unknown. Raises ServiceUnavailableError if Redis is down."""
    return user_read(user_id)
