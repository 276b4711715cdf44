"""django-redis connection pools keyed by address AND timeouts.

django-redis keeps one pool per URL for the whole process, built with the
options of the first cache alias that asks. Two aliases of one Redis with
different timeouts ("users" for the consumer, 2 s; "users_lookup" on a
request's path, REDIS_REQUEST_TIMEOUT_MS) would then silently share the
first one's: a request would wait as long as the consumer may.
"""

from typing import Any

from django_redis.pool import ConnectionFactory
from redis import ConnectionPool


class TimeoutKeyedConnectionFactory(ConnectionFactory):
    _pools: dict[Any, ConnectionPool] = {}  # keyed by more than the URL

    def get_or_create_connection_pool(self, params: dict[str, Any]) -> ConnectionPool:
        key = (params["url"], params.get("socket_timeout"), params.get("socket_connect_timeout"))
        if key not in self._pools:
            self._pools[key] = self.get_connection_pool(params)
        return self._pools[key]
