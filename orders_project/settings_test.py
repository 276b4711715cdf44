"""Settings for the test suite: the production settings with test defaults.

Only defaults are filled in; a variable set in the environment (a server
named by `make test` or by the developer) still wins.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-" + "x" * 40)
os.environ.setdefault("POSTGRES_SERVER", "127.0.0.1")
# Dedicated Redis databases so the suite's FLUSHDB never touches dev data.
os.environ.setdefault("REDIS_DB", "14")
# The user replica's database (the default, REDIS_DB + 2 mod 16, would be 0 here).
os.environ.setdefault("REDIS_USERS_DB", "13")
# Under pytest-xdist each worker (PYTEST_XDIST_WORKER=gw0, gw1, gw2) has a test database
# of its own (pytest-django) and Redis databases of its own here, because cache.clear()
# and the fixtures' FLUSHDB empty a whole database. A worker uses five numbers in a row:
# REDIS_USERS_DB = REDIS_DB - 1, REDIS_DB, +1 (Celery), +2 (beat's broker in the process
# tests) and +3 (a process test's queue); the replica's default (+2) is never used, since
# REDIS_USERS_DB is set. Worker n moves them all down by 5 n, so three workers fit
# Redis's sixteen. Workers inherit the numbers above from the main pytest process; the
# variables are set in os.environ, so the processes a test spawns use the same ones, and
# are marked shifted so that a child that loads these settings again (it inherits
# PYTEST_XDIST_WORKER) does not shift twice.
REDIS_DBS_PER_WORKER = 5
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER and os.environ.get("REDIS_DBS_OF_WORKER") != _WORKER:
    _OFFSET = REDIS_DBS_PER_WORKER * int(_WORKER.removeprefix("gw"))
    if _OFFSET + REDIS_DBS_PER_WORKER > 16:
        raise RuntimeError(f"pytest-xdist worker {_WORKER}: the suite's Redis databases fit three workers (-n 3)")
    for _NAME in ("REDIS_DB", "REDIS_USERS_DB"):
        os.environ[_NAME] = str((int(os.environ[_NAME]) - _OFFSET) % 16)
    os.environ["REDIS_DBS_OF_WORKER"] = _WORKER
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
# Production gives a request 50 ms per Redis command; two xdist workers, spawned servers and
# Chromium on two cores can take longer than that for a healthy answer, and the browser tests
# then saw a 503. The tests of the short timeout set it themselves (test_api_redis_outage.py).
os.environ.setdefault("REDIS_REQUEST_TIMEOUT_MS", "1000")
# Most tests create orders for made-up users; the user-cache tests turn this on.
os.environ.setdefault("ORDER_REQUIRE_KNOWN_USER", "false")
# Suites create many orders per client quickly; the throttle tests set their own rates.
os.environ.setdefault("API_THROTTLE_WRITE_RATE", "off")
os.environ.setdefault("API_THROTTLE_READ_RATE", "off")
os.environ.setdefault("API_THROTTLE_ANON_RATE", "off")
os.environ.setdefault("API_THROTTLE_AUTH_FAILURE_RATE", "off")
# The token cache forgets on commit, and a test's transaction never commits: the cache's
# own tests turn it on and run the commit hooks (orders/tests/test_token_cache.py).
os.environ.setdefault("AUTH_TOKEN_CACHE_SECONDS", "0")

# The environment above must be set before the settings read it (so E402).
from orders_project.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation in tests
# Tests render admin and browsable-API pages without running collectstatic first.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# WhiteNoise serves the apps' static folders directly (as under DEBUG), since the
# suite has no collected STATIC_ROOT.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
