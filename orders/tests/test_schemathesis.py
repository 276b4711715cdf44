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
import uuid

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
    ensure_resource_availability,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orders.models import Order
from orders.tests.factories import OrderFactory
from orders_project.api.pagination import cursor_encode
from tests.support.api import ORDERS_URL

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
# `make fuzz` sets FUZZ_RANDOM=1 to explore new inputs on every run.
DERANDOMIZE = os.environ.get("FUZZ_RANDOM", "") != "1"
RUN = settings(derandomize=DERANDOMIZE, deadline=None, database=None, suppress_health_check=list(HealthCheck))
# The stateful phase: scenarios of up to STATEFUL_STEPS linked calls.
STATEFUL_MAX_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "5"))
STATEFUL_STEPS = int(os.environ.get("FUZZ_STATEFUL_STEPS", "5"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Valid requests are not refused; what a create returns can be read at once.
STATEFUL_CHECKS = [positive_data_acceptance, ensure_resource_availability]


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
def orders(db) -> list[Order]:
    """Existing orders, so that `{id}` paths reach past the 404 (one can be cancelled, one cannot)."""
    return [OrderFactory.create(), OrderFactory.create(status="cancelled")]


def _make_valid(case, cursor: str) -> None:
    """Give a request generated as valid what no schema can state.

    A valid cursor is one the API wrote (the schema gives only its alphabet), and not with
    `skip`; a valid `total_amount` is the sum of the items; an Idempotency-Key already used
    with another body is a 422 (each valid create gets a fresh one).
    """
    if "cursor" in (case.query or {}):
        case.query["cursor"] = cursor
        case.query.pop("skip", None)
    if case.method == "POST" and case.path == ORDERS_URL and isinstance(case.body, dict):
        case.body.pop("total_amount", None)
        if "Idempotency-Key" in (case.headers or {}):
            case.headers["Idempotency-Key"] = uuid.uuid4().hex


def _steer(case, data, mode: GenerationMode, orders: list[Order]) -> None:
    """Point some generated requests at what exists, so they reach the code behind the 404s."""
    if "id" in (case.path_parameters or {}):
        ids = [case.path_parameters["id"], *(str(order.id) for order in orders)]
        case.path_parameters["id"] = data.draw(st.sampled_from(ids))
    if mode is GenerationMode.POSITIVE:
        _make_valid(case, data.draw(st.sampled_from([cursor_encode(o.created_at, o.id) for o in orders])))


# Schemathesis's own pytest integration (schema.parametrize / from_fixture) reaches into
# pytest internals that pytest 9 renamed, so each operation is driven with Hypothesis here.
@pytest.mark.fuzz
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_api_answers_as_its_schema_says(wsgi_app, auth_headers, orders, mode):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) == 5  # every operation parsed; a new one is a reminder to steer it

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
        @settings(RUN, max_examples=MAX_EXAMPLES)
        def call_and_validate(case, data):
            _steer(case, data, mode, orders)
            case.call_and_validate(headers=auth_headers, checks=[*CHECKS, positive_data_acceptance])

        call_and_validate()


@pytest.mark.fuzz
def test_api_answers_as_its_schema_says_along_linked_calls(wsgi_app, auth_headers, orders):
    """The stateful phase: sequences of calls along the links Schemathesis infers (a created
    order's id into read, history and cancel), valid and invalid requests mixed."""
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    newest_cursor = cursor_encode(orders[-1].created_at, orders[-1].id)

    class OrderService(schema.as_state_machine()):  # type: ignore[misc]  # a class built at run time
        def before_call(self, case):
            if case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE:
                _make_valid(case, newest_cursor)

        def get_call_kwargs(self, case):
            return {"headers": auth_headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[*CHECKS, *STATEFUL_CHECKS], transport_kwargs=kwargs)

    OrderService.run(settings=settings(RUN, max_examples=STATEFUL_MAX_EXAMPLES, stateful_step_count=STATEFUL_STEPS))


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


def test_schema_create_states_what_the_serializers_refuse(openapi):
    schemas = openapi["components"]["schemas"]
    create, item = schemas["OrderCreateInputRequest"]["properties"], schemas["OrderItemInputRequest"]["properties"]
    not_blank = "^[\\s\\x1c-\\x1f\\x85]*[^\\s\\x1c-\\x1f\\x85\\x00][^\\x00]*$"

    # "000", "ZZZ" or a metal were generated as valid currencies, `items: []` as a valid list
    assert create["currency"]["allOf"] == [{"$ref": "#/components/schemas/CurrencyEnum"}]
    assert {"USD", "EUR", "JPY"} <= set(schemas["CurrencyEnum"]["enum"])
    assert not {"XAU", "XTS", "XXX"} & set(schemas["CurrencyEnum"]["enum"])
    assert (create["items"]["minItems"], create["items"]["maxItems"]) == (1, 100)
    # "\r" or a NUL were valid ids; "-1", "" and "." valid prices
    assert create["user_id"]["pattern"] == item["product_id"]["pattern"] == not_blank
    assert create["shipping_address"]["pattern"] == "^[^\\x00]*$"
    assert item["price"]["pattern"] == "^[0-9]{1,6}(?:\\.[0-9]{1,2})?$"
    assert create["total_amount"]["pattern"] == "^[0-9]{1,16}(?:\\.[0-9]{1,2})?$"
    assert schemas["OrderCancelInputRequest"]["properties"]["reason"]["pattern"] == not_blank


def test_schema_list_parameters_state_what_the_list_refuses(openapi):
    parameters = {p["name"]: p for p in openapi["paths"][ORDERS_URL]["get"]["parameters"]}

    assert parameters["cursor"]["schema"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "pattern": "^[A-Za-z0-9_-]+$",
    }
    assert "`next` link" in parameters["cursor"]["description"]
    assert parameters["user_id"]["schema"] == {"type": "string", "maxLength": 64, "pattern": "^[^\\x00]*$"}
