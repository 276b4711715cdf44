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
  anon   anything without credentials, per client address (they all get 401,
         but guessing tokens must be slow)

A Redis outage lets requests through (logged): the limit protects the
service, and refusing every request because the counter is unreachable would
turn a cache outage into an API outage.
"""

import logging
import time
from typing import Any

from django.conf import settings
from django_redis import get_redis_connection
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from orders_project.client_ip import client_ip

logger = logging.getLogger(__name__)

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ClientRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        if request.user and request.user.is_authenticated:
            scope = "read" if request.method in _SAFE_METHODS else "write"
            ident = f"user:{request.user.pk}"
        else:
            scope, ident = "anon", f"addr:{client_ip(request)}"
        limit = settings.API_THROTTLE_RATES[scope]
        if limit is None:
            return True
        count, seconds = limit
        now = time.time()
        window = int(now // seconds)
        self._wait = seconds - (now % seconds)
        key = f"throttle:{scope}:{ident}:{window}"
        try:
            with get_redis_connection("default").pipeline() as pipe:
                pipe.incr(key)
                pipe.expire(key, seconds + 1)
                used = pipe.execute()[0]
        except RedisError as exc:
            logger.warning("Rate limit not checked (Redis: %r); request let through", exc)
            return True
        return int(used) <= count

    def wait(self) -> float:
        return max(self._wait, 1.0)
