"""The oldest transaction horizon: a session held open with a snapshot shows up, with its
transaction's start, and the horizon's age grows with every transaction after it."""

import pytest
from django.db import connection
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orders_project.xmin_horizon import xmin_horizon, xmin_horizon_collector, xmin_horizon_holders

# The test's own connection must not be inside a transaction: a reader holding an xid of
# its own would measure ages from it (and the session asking is left out anyway).
pytestmark = pytest.mark.django_db(transaction=True)

LATER_TRANSACTIONS = 5


def _new_session():
    """A second, real session on the test database (its own PostgreSQL backend)."""
    return connection.get_new_connection(connection.get_connection_params())


def _scrape() -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(xmin_horizon_collector())
    text = generate_latest(registry).decode()
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_session_idle_in_a_transaction_with_a_snapshot_holds_the_horizon():
    holder, writer = _new_session(), _new_session()
    try:
        # given a session that took a snapshot and stays idle in its transaction
        holder.autocommit = False
        with holder.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SELECT pg_backend_pid(), now()")
            pid, began = cursor.fetchone()
        # and five transactions that each took a transaction id after it
        writer.autocommit = True
        with writer.cursor() as cursor:
            for _ in range(LATER_TRANSACTIONS):
                cursor.execute("SELECT pg_current_xact_id()")

        # when the horizon is read
        holders = {one.pid: one for one in xmin_horizon_holders(limit=100)}
        horizon = xmin_horizon()
        values = _scrape()

        # then the session is named with the start of its transaction (now() is that start)
        held = holders[pid]
        assert (held.xact_start, held.state, held.backend_type) == (began, "idle in transaction", "client backend")
        assert held.age_transactions >= LATER_TRANSACTIONS
        assert horizon.age_transactions >= held.age_transactions
        assert horizon.age_seconds > 0
        assert values["postgres_xmin_horizon_age_transactions"] >= LATER_TRANSACTIONS
        assert values["postgres_xmin_horizon_age_seconds"] > 0

        # and once it ends its transaction it holds nothing
        holder.rollback()
        assert pid not in {one.pid for one in xmin_horizon_holders(limit=100)}
    finally:
        holder.close()
        writer.close()


def test_an_idle_session_outside_a_transaction_holds_nothing():
    idle = _new_session()
    try:
        idle.autocommit = True
        with idle.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()

        assert pid not in {one.pid for one in xmin_horizon_holders(limit=100)}
    finally:
        idle.close()
