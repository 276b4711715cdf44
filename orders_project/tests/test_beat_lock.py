"""At most one Celery beat schedules: real beat processes against the test database,
each with production settings. The one holding the beat lock schedules; the others
wait (alive, heartbeat fresh), stop cleanly on SIGTERM, and take over when it stops;
a holder whose lock session is gone stops scheduling and waits to take the lock again."""

from pathlib import Path

import pytest
from django.db import connection

from orders_project.beat_lock import BEAT_LOCK_KEY
from tests.support.processes import BIN, ServiceProcess, service_env, service_process
from tests.support.waiting import wait_for

# transaction=True: the children use the test database, which the test must not hold open.
pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

BEAT = [str(BIN / "celery"), "-A", "orders_project", "beat", "--loglevel", "INFO", "--pidfile="]
ACQUIRED = "beat lock acquired"
WAITING = "another beat holds the beat lock"
LOST = "beat lock lost"


def _env(tmp_path: Path, name: str, broker_url: str) -> dict[str, str]:
    return service_env(HEARTBEAT_FILE=str(tmp_path / f"{name}.heartbeat"), CELERY_BROKER_URL=broker_url)


def _wait_for_line(process: ServiceProcess, line: str, what: str) -> None:
    wait_for(lambda: line in process.log() or not process.alive(), what)
    assert process.alive(), process.log()[-3000:]
    assert line in process.log()


def test_a_second_beat_waits_for_the_lock_and_takes_over_when_the_first_stops(tmp_path, beat_broker_url):
    with service_process(BEAT, _env(tmp_path, "first", beat_broker_url), tmp_path / "first.log") as first:
        _wait_for_line(first, ACQUIRED, "the first beat to take the lock")

        # a beat started while another schedules waits, with a fresh heartbeat (its probe passes)
        with service_process(BEAT, _env(tmp_path, "extra", beat_broker_url), tmp_path / "extra.log") as extra:
            _wait_for_line(extra, WAITING, "the extra beat to wait for the lock")
            wait_for(lambda: (tmp_path / "extra.heartbeat").exists(), "the waiting beat's heartbeat")
            assert ACQUIRED not in extra.log()
            # and stops cleanly on SIGTERM while it waits
            assert extra.stop(timeout=25) == 0

        with service_process(BEAT, _env(tmp_path, "second", beat_broker_url), tmp_path / "second.log") as second:
            _wait_for_line(second, WAITING, "the second beat to wait for the lock")
            assert ACQUIRED not in second.log()

            # when the first beat stops
            assert first.stop(timeout=25) == 0

            # then the second one takes over
            _wait_for_line(second, ACQUIRED, "the second beat to take over")
            assert second.stop(timeout=25) == 0


def test_a_beat_whose_lock_session_is_gone_waits_for_the_lock_again_instead_of_scheduling_or_exiting(
    tmp_path, beat_broker_url
):
    with service_process(BEAT, _env(tmp_path, "beat", beat_broker_url), tmp_path / "beat.log") as beat:
        _wait_for_line(beat, ACQUIRED, "beat to take the lock")

        with connection.cursor() as cursor:
            # PostgreSQL ends the session holding the lock (as it does for a node it cannot
            # reach, or in a restart), and another holder takes the lock meanwhile. One round
            # trip, so the test's blocking request queues before the old session is gone and
            # wins over the beat's next try, whenever its tick comes.
            high, low = BEAT_LOCK_KEY >> 32, BEAT_LOCK_KEY & 0xFFFFFFFF
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                f" AND classid::bigint = {high} AND objid::bigint = {low} AND granted"
                # this test database's beat only: another test session's beat may hold the same key
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database());"
                f" SELECT pg_advisory_lock({BEAT_LOCK_KEY})"
            )

            # then the beat notices within a tick and waits, alive, instead of scheduling or exiting
            _wait_for_line(beat, LOST, "beat to notice it lost its lock")
            _wait_for_line(beat, WAITING, "beat to wait for the lock")
            assert beat.log().count(ACQUIRED) == 1

            # and when the lock is free again it takes it on a new session
            cursor.execute("SELECT pg_advisory_unlock(%s)", [BEAT_LOCK_KEY])
        wait_for(lambda: beat.log().count(ACQUIRED) == 2 or not beat.alive(), "beat to take the lock again")
        assert beat.alive(), beat.log()[-3000:]
        assert beat.stop(timeout=25) == 0
