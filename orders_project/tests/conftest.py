"""Fixtures shared by the tests that run the service's processes."""

from collections.abc import Iterator

import pytest
import redis
from django.conf import settings


@pytest.fixture
def beat_broker_url() -> Iterator[str]:
    """A Redis database of its own for beat's tasks, emptied afterwards: no worker runs them here."""
    database = (settings.REDIS_DB + 2) % 16  # the worker's databases: orders_project/settings_test.py
    url = f"redis://{settings.REDIS_HOST}:{settings.REDIS_PORT}/{database}"
    yield url
    redis.Redis.from_url(url).flushdb()
