"""Per-client request rates: a fixed-window counter per client and kind of request in Redis.

DRF's SimpleRateThrottle keeps a list of every request time per client in the
cache and rewrites it on each request: at thousands of requests a minute that
is a large value read and written per request, and concurrent requests lose
each other's updates. One INCR per request is atomic and constant-size; the
price is that a client can spend up to twice its rate across a window
boundary, which is fine for protecting the service.

Scopes (settings.API_THROTTLE_RATES, read by env_rate: "600/min"; "off" disables one):
  write  POST/PUT/PATCH/DELETE of an authenticated client (create, cancel)
  read   GET/HEAD/OPTIONS of an authenticated client
  anon   anything without credentials, per client address (public views: the
         schema; the order API answers them 401 before any throttle runs)
  auth_failure  failed authentications (401: a bad, expired or missing token),
         per client address. DRF authenticates before it throttles, so the
         other scopes never see these: the error handler counts each 401
         (auth_failure_count) and answers 429 beyond the rate, and a request
         presenting a token from an address already over it is refused before
         its token is looked up (auth_failure_refuse), so guessing tokens costs
         no query beyond the rate.

A Redis outage lets requests through (logged): the limit protects the
service, and refusing every request because the counter is unreachable would
turn a cache outage into an API outage.
"""

import logging
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django_redis import get_redis_connection
from redis.exceptions import RedisError
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from orders_project.client_ip import client_ip

logger = logging.getLogger(__name__)

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _window(scope: str, ident: str) -> tuple[str, int, int, float] | None:
    """The counter key of `ident`'s current window in `scope`, with the rate (allowed, seconds)
    and the time; None when the scope is off."""
    limit = settings.API_THROTTLE_RATES.get(scope)
    if limit is None:
        return None
    allowed, seconds = limit
    now = time.time()
    return f"throttle:{scope}:{ident}:{int(now // seconds)}", allowed, seconds, now


def _wait(used: int, allowed: int, seconds: int, now: float) -> float | None:
    """None while `used` is within the rate, else the seconds until the window ends."""
    return None if used <= allowed else max(seconds - (now % seconds), 1.0)


def _hit(scope: str, ident: str) -> float | None:
    """Count one request of `ident` in `scope`'s current window: None while within the
    rate, else the seconds until the window ends."""
    window = _window(scope, ident)
    if window is None:
        return None
    key, allowed, seconds, now = window
    try:
        with get_redis_connection("default").pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, seconds + 1)
            used = int(pipe.execute()[0])
    except RedisError as exc:
        logger.warning("Rate limit not checked (Redis: %r); request let through", exc)
        return None
    return _wait(used, allowed, seconds, now)


class ClientRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        if request.user and request.user.is_authenticated:
            scope = "read" if request.method in _SAFE_METHODS else "write"
            ident = f"user:{request.user.pk}"
        else:
            scope, ident = "anon", f"addr:{client_ip(request)}"
        self._wait = _hit(scope, ident)
        return self._wait is None

    def wait(self) -> float:
        return self._wait or 1.0


def _auth_failure_throttled(wait: float) -> Throttled:
    return Throttled(wait, detail="Too many failed authentications from this address; retry later.")


def auth_failure_count(request: HttpRequest) -> Throttled | None:
    """Count one failed authentication of the request's client address: the 429 to
    answer instead of the 401 once it is beyond the rate, else None."""
    wait = _hit("auth_failure", f"addr:{client_ip(request)}")
    return None if wait is None else _auth_failure_throttled(wait)


def auth_failure_refuse(request: HttpRequest, *, also_read: str | None = None) -> bytes | None:
    """Raise the 429 when the request's client address has no failed authentication
    left in this window: called before a token is looked up.

    `also_read`: a Redis key read in the same round trip (the token cache's epoch), whose
    value is returned: b"" when the key is missing, None when Redis is down."""
    window = _window("auth_failure", f"addr:{client_ip(request)}")
    if window is None and also_read is None:
        return None
    keys = [key for key in (window and window[0], also_read) if key is not None]
    try:
        values = get_redis_connection("default").mget(keys)  # one command: no pipeline to build
    except RedisError as exc:
        logger.warning("Rate limit not checked (Redis: %r); request let through", exc)
        return None
    if window is not None:
        # Counted so far; the request asking is let through while one more fits.
        _, allowed, seconds, now = window
        wait = _wait(int(values[0] or 0) + 1, allowed, seconds, now)
        if wait is not None:
            raise _auth_failure_throttled(wait)
    if also_read is None:
        return None
    return values[-1] or b""
