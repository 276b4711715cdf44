"""Settings for the test suite: the production settings with test defaults.

Only defaults are filled in; a variable set in the environment (a server
named by `make test` or by the developer) still wins.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-" + "x" * 40)
os.environ.setdefault("POSTGRES_SERVER", "127.0.0.1")
# A dedicated Redis database so the suite's FLUSHDB never touches dev data.
os.environ.setdefault("REDIS_DB", "14")
# The user replica's database (the default, REDIS_DB + 2 mod 16, would be 0 here).
os.environ.setdefault("REDIS_USERS_DB", "13")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
# Most tests create orders for made-up users; the user-cache tests turn this on.
os.environ.setdefault("ORDER_REQUIRE_KNOWN_USER", "false")
# Suites create many orders per client quickly; the throttle tests set their own rates.
os.environ.setdefault("API_THROTTLE_WRITE_RATE", "off")
os.environ.setdefault("API_THROTTLE_READ_RATE", "off")
os.environ.setdefault("API_THROTTLE_ANON_RATE", "off")
os.environ.setdefault("API_THROTTLE_AUTH_FAILURE_RATE", "off")

from orders_project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation in tests
# Tests render admin and browsable-API pages without running collectstatic first.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# WhiteNoise serves the apps' static folders directly (as under DEBUG), since the
# suite has no collected STATIC_ROOT.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
