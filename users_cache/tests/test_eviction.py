"""The start-up warning about an evicting Redis, against a Valkey of the test's own
(its maxmemory-policy and ACLs are changed, so not the suite's shared server)."""

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from django.apps import apps
from django.conf import settings as django_settings

from devstack import valkey
from devstack.procs import free_port
from users_cache.eviction import maxmemory_policy, redis_eviction_check

MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"
ADVICE = "under memory pressure it can drop live users or queued tasks. Use noeviction there"


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[redis.Redis]:
    port = free_port()
    server = valkey.start(tmp_path / "valkey", port, durable=False)
    client = redis.Redis(port=port)
    try:
        yield client
    finally:
        client.close()
        server.stop()


def _port(client: redis.Redis) -> int:
    return int(client.connection_pool.connection_kwargs["port"])


@pytest.fixture
def replica_on(settings: Any) -> Any:
    """Point the user replica (and the broker, unless told otherwise) at `client`'s server as `user`."""

    def point(client: redis.Redis, user: str = "", password: str = "", broker: str | None = None) -> None:
        auth = f"{user}:{password}@" if user else ""
        url = f"redis://{auth}127.0.0.1:{_port(client)}/{settings.REDIS_USERS_DB}"
        settings.CACHES = {**settings.CACHES, "users": {**settings.CACHES["users"], "LOCATION": url}}
        settings.CELERY_BROKER_URL = broker or url

    return point


def _records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "users_cache.eviction"]


def test_an_evicting_policy_is_warned_about_once_per_server(
    own_valkey: redis.Redis, replica_on: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given the replica and the broker on one Redis that evicts least-recently-used keys
    own_valkey.config_set("maxmemory-policy", "allkeys-lru")
    replica_on(own_valkey)
    caplog.set_level(logging.INFO, logger="users_cache.eviction")

    # when a process starts (every process kind runs the app's ready())
    apps.get_app_config("users_cache").ready()

    # then one WARNING names the server and its policy
    port = _port(own_valkey)
    assert _records(caplog) == [
        (
            logging.WARNING,
            f"Redis for the user replica at 127.0.0.1:{port} has maxmemory-policy allkeys-lru: {ADVICE} "
            "(docs/architecture.md, 'User replica').",
        )
    ]


def test_noeviction_gives_no_warning(
    own_valkey: redis.Redis, replica_on: Any, caplog: pytest.LogCaptureFixture
) -> None:
    own_valkey.config_set("maxmemory-policy", "noeviction")
    replica_on(own_valkey)
    caplog.set_level(logging.INFO, logger="users_cache.eviction")

    redis_eviction_check()

    assert _records(caplog) == []


def test_an_evicting_broker_on_another_server_is_named_as_the_broker(
    own_valkey: redis.Redis, replica_on: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given the replica on the suite's Redis (noeviction) and the broker on one that evicts
    own_valkey.config_set("maxmemory-policy", "volatile-lru")
    replica_on(redis.Redis(port=django_settings.REDIS_PORT), broker=f"redis://127.0.0.1:{_port(own_valkey)}/1")
    caplog.set_level(logging.INFO, logger="users_cache.eviction")

    redis_eviction_check()

    assert [(level, message.split(":")[0]) for level, message in _records(caplog)] == [
        (logging.WARNING, "Redis for the Celery broker at 127.0.0.1")
    ]


def test_a_refused_config_get_falls_back_to_info_memory(
    own_valkey: redis.Redis, replica_on: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given a user that may not run CONFIG, as on managed Redis services
    own_valkey.config_set("maxmemory-policy", "allkeys-random")
    own_valkey.execute_command("ACL", "SETUSER", "app", "on", ">secret", "~*", "&*", "+@all", "-config")
    replica_on(own_valkey, user="app", password="secret")
    limited = redis.Redis(port=_port(own_valkey), username="app", password="secret")
    with pytest.raises(redis.exceptions.NoPermissionError):
        limited.config_get("maxmemory-policy")
    caplog.set_level(logging.INFO, logger="users_cache.eviction")

    assert maxmemory_policy(limited) == "allkeys-random"
    redis_eviction_check()

    assert [level for level, _ in _records(caplog)] == [logging.WARNING]
    assert "has maxmemory-policy allkeys-random" in _records(caplog)[0][1]


def test_a_server_that_answers_neither_is_reported_at_info(
    own_valkey: redis.Redis, replica_on: Any, caplog: pytest.LogCaptureFixture
) -> None:
    own_valkey.execute_command("ACL", "SETUSER", "app", "on", ">secret", "~*", "&*", "+@all", "-config", "-info")
    replica_on(own_valkey, user="app", password="secret")
    caplog.set_level(logging.INFO, logger="users_cache.eviction")

    redis_eviction_check()

    port = _port(own_valkey)
    assert _records(caplog) == [
        (
            logging.INFO,
            f"Redis for the user replica at 127.0.0.1:{port} refuses both CONFIG GET and INFO memory; "
            "maxmemory-policy not checked",
        )
    ]


def test_an_unreachable_redis_at_start_is_reported_at_info_not_raised(
    replica_on: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    replica_on(redis.Redis(port=port))
    caplog.set_level(logging.INFO, logger="users_cache.eviction")

    redis_eviction_check()

    records = _records(caplog)
    assert [level for level, _ in records] == [logging.INFO]
    assert records[0][1].startswith(f"Redis for the user replica at 127.0.0.1:{port} did not answer (")


def test_a_password_with_at_colon_and_slash_reaches_redis_intact(own_valkey: redis.Redis) -> None:
    # given a Redis that requires a password full of URL delimiters
    password = "p@ss:w/rd#1?%"
    own_valkey.config_set("requirepass", password)

    # when a process builds its Redis URLs from REDIS_PASSWORD
    env = {
        "DJANGO_SETTINGS_MODULE": "orders_project.settings_test",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(_port(own_valkey)),
        "REDIS_PASSWORD": password,
        "PATH": "/usr/bin:/bin",
    }
    script = (
        "import django; django.setup()\n"
        "from django.conf import settings; from django_redis import get_redis_connection; import redis\n"
        "print(get_redis_connection('default').ping(), get_redis_connection('users').ping(),"
        " redis.Redis.from_url(settings.CELERY_BROKER_URL).ping())\n"
        "print(settings.CACHES['users']['LOCATION'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=MANAGE_PY.parent, capture_output=True, timeout=60, check=False
    )

    # then the cache, the replica and the broker all authenticate
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == [
        "True True True",
        f"redis://:{quote(password, safe='')}@127.0.0.1:{_port(own_valkey)}/13",
    ]
