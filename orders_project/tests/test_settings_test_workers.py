"""Under pytest-xdist each worker's Redis databases are its own: cache.clear() and the
fixtures' FLUSHDB in one worker never empty what the other is using."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

# Each case starts a fresh interpreter that loads the test settings.
pytestmark = pytest.mark.processes

_PRINT = (
    "import json, re, django; django.setup(); from django.conf import settings as s; "
    "urls = [c['LOCATION'] for c in s.CACHES.values()] + [s.CELERY_BROKER_URL]; "
    "print(json.dumps({'dbs': sorted({int(re.search(r'/(\\d+)$', u).group(1)) for u in urls}), "
    "'redis_db': s.REDIS_DB, 'env': {k: v for k, v in __import__('os').environ.items() if k.startswith('REDIS')}}))"
)


def _databases(**env: str) -> dict:
    """The Redis database numbers the test settings give a process with `env` (no REDIS_* inherited)."""
    base = {name: value for name, value in os.environ.items() if not name.startswith(("REDIS", "PYTEST_XDIST"))}
    base["DJANGO_SETTINGS_MODULE"] = "orders_project.settings_test"
    done = subprocess.run(
        [sys.executable, "-c", _PRINT], cwd=settings.BASE_DIR, env={**base, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_two_workers_use_disjoint_redis_databases_and_a_child_keeps_its_workers():
    main = _databases()
    gw0 = _databases(PYTEST_XDIST_WORKER="gw0", REDIS_DB="14", REDIS_USERS_DB="13")
    gw1 = _databases(PYTEST_XDIST_WORKER="gw1", REDIS_DB="14", REDIS_USERS_DB="13")
    # a process spawned by gw1 inherits its environment, already shifted
    child_of_gw1 = _databases(PYTEST_XDIST_WORKER="gw1", **gw1["env"])

    assert main["dbs"] == gw0["dbs"] == [13, 14, 15]
    assert gw1["dbs"] == [5, 6, 7]
    assert child_of_gw1["dbs"] == gw1["dbs"]
    # and the numbers the process tests derive (+2, +3, +5 of REDIS_DB) stay apart too
    derived = {
        worker: {(w["redis_db"] + n) % 16 for n in (0, 1, 2, 3, 5)} | set(w["dbs"])
        for worker, w in (("gw0", gw0), ("gw1", gw1))
    }
    assert derived["gw0"].isdisjoint(derived["gw1"])


def test_a_third_worker_is_refused_naming_the_limit():
    base = {name: value for name, value in os.environ.items() if not name.startswith(("REDIS", "PYTEST_XDIST"))}
    done = subprocess.run(
        [sys.executable, "-c", "import orders_project.settings_test"],
        cwd=settings.BASE_DIR,
        env={**base, "PYTEST_XDIST_WORKER": "gw2"},
        capture_output=True,
        text=True,
    )

    assert done.returncode == 1
    assert "the suite's Redis databases fit two workers (-n 2)" in done.stderr
