"""Project-wide pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# --- servers ---
# PostgreSQL and Redis come from the environment (`make test` starts embedded ones
# when it names none). Kafka is started here, once per session, only when a test asks.


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ "host:port" of a Kafka broker for this session; settings.KAFKA_BOOTSTRAP_SERVERS points at it.

    Uses TEST_KAFKA_BOOTSTRAP_SERVERS, else KAFKA_BOOTSTRAP_SERVERS when it is explicitly
    set in the environment (settings has a default for it, so settings are not asked),
    else starts a Tansu broker on a free loopback port.
    """
    from django.conf import settings

    from orders_project.devstack import kafka
    from orders_project.devstack.environment import named
    from orders_project.devstack.procs import free_port

    given = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS") or (
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] if named("kafka") else None
    )
    server = None
    if given:
        address = given.strip()
    else:
        server = kafka.start(free_port(), log_path=tmp_path_factory.mktemp("kafka") / "tansu.log")
        address = server.address
    previous = settings.KAFKA_BOOTSTRAP_SERVERS
    settings.KAFKA_BOOTSTRAP_SERVERS = [part.strip() for part in address.split(",") if part.strip()]
    try:
        yield address
    finally:
        settings.KAFKA_BOOTSTRAP_SERVERS = previous
        if server is not None:
            server.stop()
