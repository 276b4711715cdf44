"""The token lookup's rows, kept in each web process while nothing that decides them changed.

Every API request looked its token up in PostgreSQL (one statement joining the token, its
user and the client's scope: orders.api.authentication): ~0.5 ms of a create's ~3 ms of
web CPU, and a round trip. The rows a lookup found are kept here by the token's prefix,
for AUTH_TOKEN_CACHE_SECONDS at most, and only while the auth epoch in Redis is the one
they were read under:

* Anything that changes what a lookup would find (a token deleted or its expiry changed,
  a user saved or deleted, a permission or group granted or taken, an ApiClient binding)
  bumps the epoch through Django's model signals when its transaction commits (no Redis
  call inside the transaction; before the commit the old rows are still the database's),
  so every process's cache stops serving the old rows with the next request: revocation
  stays immediate. A lookup that read the old rows before the commit kept them under the
  old epoch, which no longer matches.
* The epoch is read in the round trip that already reads the client's failed
  authentications (orders_project.api.throttles.auth_failure_refuse): a hit costs no
  round trip of its own.
* What signals do not see (a queryset's update(), SQL by hand) is served for at most
  AUTH_TOKEN_CACHE_SECONDS; with Redis down nothing is cached or served from the cache.

A hit rebuilds the token and user from the rows as a lookup does, and knox's checks run
on them as before: the key's digest, the expiry, the user's activity.
"""

import logging
import secrets
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django_redis import get_redis_connection
from knox.models import get_token_model
from redis.exceptions import RedisError

from orders.models import ApiClient

logger = logging.getLogger(__name__)

EPOCH_KEY = "auth:token-epoch"
# Enough for every token a fleet of services uses; past it the cache starts again.
_MOST_ENTRIES = 10_000

Rows = list[tuple[Any, ...]]

_lock = threading.Lock()
_entries: dict[str, tuple[bytes, float, Rows]] = {}  # token prefix -> (epoch, deadline, rows)


def rows_get(token_key: str, *, epoch: bytes | None) -> Rows | None:
    """The rows kept for this prefix under `epoch`, still within their seconds; None otherwise."""
    if epoch is None or settings.AUTH_TOKEN_CACHE_SECONDS <= 0:
        return None
    entry = _entries.get(token_key)
    if entry is None or entry[0] != epoch or entry[1] < time.monotonic():
        return None
    return entry[2]


def rows_put(token_key: str, rows: Rows, *, epoch: bytes | None) -> None:
    """Keep a lookup's rows under the epoch read before the lookup."""
    if epoch is None or settings.AUTH_TOKEN_CACHE_SECONDS <= 0:
        return
    with _lock:
        if len(_entries) >= _MOST_ENTRIES:
            _entries.clear()
        _entries[token_key] = (epoch, time.monotonic() + settings.AUTH_TOKEN_CACHE_SECONDS, rows)


def epoch_missing() -> None:
    """Start an epoch where Redis has none (a fresh or restarted Redis) with a random value,
    so that rows kept under an earlier epoch can never match again."""
    try:
        get_redis_connection("default").set(EPOCH_KEY, secrets.token_hex(8), nx=True)
    except RedisError as exc:
        logger.warning("Token cache epoch not started (Redis: %r)", exc)


def epoch_bump() -> None:
    """A new epoch: every process's kept rows stop being served."""
    try:
        get_redis_connection("default").set(EPOCH_KEY, secrets.token_hex(8))
    except RedisError as exc:
        # Rows kept in other processes are served until their seconds run out.
        logger.error("Token cache epoch not bumped (Redis: %r); kept rows expire on their own", exc)


def _changed(**kwargs: Any) -> None:
    transaction.on_commit(epoch_bump, robust=True)


def signals_connect() -> None:
    """Bump the epoch on every change that can change a token lookup's rows."""
    user_model = get_user_model()
    for model in (get_token_model(), user_model, Group, Permission, ApiClient):
        post_save.connect(_changed, sender=model, dispatch_uid=f"token-cache-save-{model._meta.label}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"token-cache-delete-{model._meta.label}")
    for through in (user_model.groups.through, user_model.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(_changed, sender=through, dispatch_uid=f"token-cache-m2m-{through._meta.label}")
