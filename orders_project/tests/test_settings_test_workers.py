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


def test_the_three_workers_use_disjoint_redis_databases_and_a_child_keeps_its_workers():
    main = _databases()
    workers = {
        name: _databases(PYTEST_XDIST_WORKER=name, REDIS_DB="14", REDIS_USERS_DB="13") for name in ("gw0", "gw1", "gw2")
    }
    # a process spawned by gw1 inherits its environment, already shifted
    child_of_gw1 = _databases(PYTEST_XDIST_WORKER="gw1", **workers["gw1"]["env"])

    assert main["dbs"] == workers["gw0"]["dbs"] == [13, 14, 15]
    assert workers["gw1"]["dbs"] == [8, 9, 10]
    assert workers["gw2"]["dbs"] == [3, 4, 5]
    assert child_of_gw1["dbs"] == workers["gw1"]["dbs"]
    # and the numbers the process tests derive (+2, +3 of REDIS_DB) stay apart too
    derived = {name: {(w["redis_db"] + n) % 16 for n in (0, 1, 2, 3)} | set(w["dbs"]) for name, w in workers.items()}
    assert derived["gw0"].isdisjoint(derived["gw1"] | derived["gw2"])
    assert derived["gw1"].isdisjoint(derived["gw2"])


def test_a_fourth_worker_is_refused_naming_the_limit():
    base = {name: value for name, value in os.environ.items() if not name.startswith(("REDIS", "PYTEST_XDIST"))}
    done = subprocess.run(
        [sys.executable, "-c", "import orders_project.settings_test"],
        cwd=settings.BASE_DIR,
        env={**base, "PYTEST_XDIST_WORKER": "gw3"},
        capture_output=True,
        text=True,
    )

    assert done.returncode == 1
    assert "the suite's Redis databases fit three workers (-n 3)" in done.stderr
