"""Schemathesis against /api/schema/: generated requests never get a 5xx or an answer the schema does not describe.

Every operation in the schema is called with an authenticated client (a token
made by `manage.py create_api_token`, as an operator would make one) with
requests Hypothesis generates from the schema, valid ones and invalid ones.
Each response must be a non-5xx, have a status code the operation documents,
and a content type and body that match what is documented for that status.

`make test` runs FUZZ_MAX_EXAMPLES (default 25) examples per operation,
derandomized so a run is repeatable; `make fuzz` runs many more, randomly.
"""

import io
import os

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orders.tests.conftest import ORDERS_URL
from orders.tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
# `make fuzz` sets FUZZ_RANDOM=1 to explore new inputs on every run.
DERANDOMIZE = os.environ.get("FUZZ_RANDOM", "") != "1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_app(db, settings):
    """The real WSGI application, called in-process on the test's own database connection.

    Django's handler closes the connection at the end of each request; Django's test
    client turns that off for the test's transaction, and so must this (as Schemathesis
    calls the app through a WSGI client of its own).
    """
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]  # Schemathesis's host name
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(db) -> dict[str, str]:
    # The project's own way to make a token, so this keeps working when token storage changes.
    out = io.StringIO()
    call_command("create_api_token", "schemathesis", "--service", stdout=out, stderr=io.StringIO())
    return {"Authorization": f"Token {out.getvalue().strip()}"}


@pytest.fixture
def order_ids(db) -> list[str]:
    """Existing orders, so that `{id}` paths reach past the 404 (one can be cancelled, one cannot)."""
    return [str(OrderFactory.create().id), str(OrderFactory.create(status="cancelled").id)]


def _steer(case, data, mode: GenerationMode, order_ids: list[str]) -> None:
    """Point some generated requests at what exists, so they reach the code behind the 404s and 400s."""
    if "id" in (case.path_parameters or {}):
        case.path_parameters["id"] = data.draw(st.sampled_from([case.path_parameters["id"], *order_ids]))
    creating = mode is GenerationMode.POSITIVE and case.method == "POST" and case.path == ORDERS_URL
    if creating and isinstance(case.body, dict) and data.draw(st.booleans()):
        # Random three letters are rarely ISO 4217, random items rarely valid, a random total rarely right.
        case.body["currency"] = data.draw(st.sampled_from(["USD", "eur", "JPY"]))
        case.body["items"] = [{"product_id": "p1", "quantity": 2, "price": "9.99"}]
        case.body.pop("total_amount", None)


# Schemathesis's own pytest integration (schema.parametrize / from_fixture) reaches into
# pytest internals that pytest 9 renamed, so each operation is driven with Hypothesis here.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_api_answers_as_its_schema_says(wsgi_app, auth_headers, order_ids, mode):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) == 5  # every operation parsed; a new one is a reminder to steer it

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=DERANDOMIZE,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call_and_validate(case, data):
            _steer(case, data, mode, order_ids)
            case.call_and_validate(headers=auth_headers, checks=CHECKS)

        call_and_validate()


# What Schemathesis found in the schema, pinned here so the schema cannot drift back.


@pytest.fixture
def openapi(api_client) -> dict:
    return api_client.get("/api/schema/?format=json").json()


def test_schema_history_from_status_may_be_empty(openapi):
    # the creation row has from_status "" (the schema allowed only the four statuses)
    assert openapi["components"]["schemas"]["OrderStatusChange"]["properties"]["from_status"]["oneOf"] == [
        {"$ref": "#/components/schemas/OrderStatusEnum"},
        {"$ref": "#/components/schemas/BlankEnum"},
    ]
    assert openapi["components"]["schemas"]["BlankEnum"] == {"enum": [""]}


@pytest.mark.parametrize("name", ["OrderCreateInputRequest", "OrderItemInputRequest", "OrderCancelInputRequest"])
def test_schema_input_objects_refuse_unknown_properties(openapi, name):
    # the serializers answer 400 "Unknown field."; the schema said any extra property was fine
    assert openapi["components"]["schemas"][name]["additionalProperties"] is False


def test_schema_idempotency_key_is_bounded_printable_ascii(openapi):
    (header,) = [p for p in openapi["paths"][ORDERS_URL]["post"]["parameters"] if p["in"] == "header"]

    assert header["schema"] == {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"}
