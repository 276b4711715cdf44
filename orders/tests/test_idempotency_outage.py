"""An Idempotency-Key after a failed create: an outage leaves nothing to wait out, and a key
row that vanishes while a request looks at it is no 500.

transaction=True: the faults happen on real connections (the request's, and another one).
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django.db import IntegrityError, connection, connections
from django.utils import timezone

from orders import services
from orders.idempotency import request_fingerprint
from orders.models import IdempotencyKey, Order
from orders.tests.factories import SEED_PAYLOAD
from outbox.models import OutboxEvent
from tests.support.api import ORDERS_URL

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "key-of-an-interrupted-create"


def _post(client: Any) -> Any:
    return client.post(ORDERS_URL, SEED_PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY=KEY)


@contextmanager
def _maintenance_connection() -> Iterator[psycopg.Connection[Any]]:
    """A superuser session on the server's `postgres` database, outside the test database."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as maintenance:
        yield maintenance


def _allow_connections(maintenance: psycopg.Connection[Any], allowed: bool) -> None:
    name = connection.settings_dict["NAME"]
    maintenance.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')


def test_a_create_cut_by_a_database_outage_can_be_retried_with_its_key_at_once_when_it_ends(api_client, monkeypatch):
    # given PostgreSQL goes away in the middle of a create, after its order rows were written:
    # the request's session is terminated and the database refuses new sessions (as while it
    # restarts) until the test ends the outage
    create = services.order_create
    with _maintenance_connection() as maintenance:

        def order_create_then_outage(**kwargs: Any) -> Any:
            order = create(**kwargs)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                (pid,) = cursor.fetchone()
            _allow_connections(maintenance, False)
            maintenance.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
            return order

        monkeypatch.setattr(services, "order_create", order_create_then_outage)
        try:
            # when a client creates an order with a key
            cut = _post(api_client)
        finally:
            # and then the outage ends
            _allow_connections(maintenance, True)
    monkeypatch.undo()
    connection.close()  # the terminated session (a server drops it at the end of the request)

    # then the create was told to retry later, and nothing of it was kept: no order, no key
    assert (cut.status_code, cut.json()["code"]) == (503, "service_unavailable")
    assert (Order.objects.count(), IdempotencyKey.objects.count()) == (0, 0)

    # and the client's immediate retry with the same key creates the order
    retried = _post(api_client)
    assert retried.status_code == 201
    assert [str(pk) for pk in Order.objects.values_list("id", flat=True)] == [retried.json()["id"]]
    assert OutboxEvent.objects.count() == 1
    assert IdempotencyKey.objects.get().response_body == retried.json()


def _in_another_connection(work: Callable[[], None]) -> None:
    """Run ORM work on a connection of its own (another thread), committed when this returns."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []


def test_a_key_row_deleted_between_the_conflict_and_its_lookup_is_no_500(api_client, user):
    # given (a deterministic hook on the request's connection, real statements on another one):
    # just before the request writes its key, another request's response is committed under
    # the same key; and right after the request found the key taken, before it reads that row,
    # the row is deleted (purged, or an older release's claim released)
    fingerprint = request_fingerprint(method="POST", path=ORDERS_URL, body=SEED_PAYLOAD)
    steps = {"inserted": False, "conflicted": False, "deleted": False}

    def insert_other() -> None:
        IdempotencyKey.objects.create(
            client_id=user.pk,
            key=KEY,
            request_fingerprint=fingerprint,
            status="completed",
            response_status=201,
            response_body={"id": "the other request's order"},
            response_location="http://testserver/elsewhere/",
            created_at=timezone.now(),
        )

    def delete_other() -> None:
        IdempotencyKey.objects.filter(client_id=user.pk, key=KEY).delete()

    def hook(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        plain = " ".join(sql.replace('"', "").split())
        writes_key = plain.startswith("INSERT INTO orders_idempotencykey")
        reads_key = plain.startswith("SELECT") and "FROM orders_idempotencykey" in plain
        if writes_key and not steps["inserted"]:
            steps["inserted"] = True
            _in_another_connection(insert_other)
            try:
                result = execute(sql, params, many, context)
            except IntegrityError:
                steps["conflicted"] = True
                raise
            steps["conflicted"] = context["cursor"].rowcount == 0
            return result
        if reads_key and steps["conflicted"] and not steps["deleted"]:
            steps["deleted"] = True
            _in_another_connection(delete_other)
        return execute(sql, params, many, context)

    # when the request runs through that
    with connection.execute_wrapper(hook):
        response = _post(api_client)

    # then both faults happened, and the request did its work: the key was free again
    assert steps == {"inserted": True, "conflicted": True, "deleted": True}
    assert response.status_code == 201
    assert [str(pk) for pk in Order.objects.values_list("id", flat=True)] == [response.json()["id"]]
    stored = IdempotencyKey.objects.get()
    assert (stored.status, stored.response_body) == ("completed", response.json())
