"""The event contract: valid schemas, a served and self-consistent AsyncAPI document,
docs generated from the schemas, and the one check every produced event goes through."""

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client
from jsonschema import Draft202012Validator

from devstack import contract as contract_tools
from orders_project import contract
from tests.support.contract import outbox_row_problems

SCHEMA_NAMES = sorted(path.stem for path in contract.SCHEMA_DIR.glob("*.json"))
EVENT_TYPES = [*contract.ORDER_EVENT_TYPES, *contract.USER_EVENT_TYPES]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = contract.schema(name)

    Draft202012Validator.check_schema(schema)  # raises SchemaError

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_fixes_its_type_and_version(event_type: str) -> None:
    properties = contract.schema(event_type)["properties"]

    assert properties["event_type"] == {**properties["event_type"], "const": event_type}
    assert contract.event_version(event_type) == "1.0"


@pytest.fixture
def served() -> dict[str, Any]:
    """/api/asyncapi.yaml and .json, fetched without any credentials."""
    client = Client()
    as_yaml = client.get("/api/asyncapi.yaml")
    as_json = client.get("/api/asyncapi.json")
    assert (as_yaml.status_code, as_json.status_code) == (200, 200)
    assert as_yaml["Content-Type"] == "application/yaml; charset=utf-8"
    assert as_json["Content-Type"] == "application/json"
    document = yaml.safe_load(as_yaml.content)
    assert json.loads(as_json.content) == document
    return dict(document)


@pytest.mark.django_db
def test_the_openapi_schema_is_public_too() -> None:
    # The AsyncAPI document is served without authentication because the OpenAPI one is.
    assert Client().get("/api/schema/").status_code == 200


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"not a local reference: {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_asyncapi_document_is_served_and_every_reference_resolves(served: dict[str, Any]) -> None:
    assert served["asyncapi"] == "3.0.0"
    assert served["info"]["title"] and served["info"]["version"]
    for ref in _refs(served):
        _resolve(served, ref)  # KeyError names a dangling reference


def test_asyncapi_describes_every_topic_with_its_schema_key_and_direction(served: dict[str, Any]) -> None:
    by_address = {channel["address"]: channel for channel in served["channels"].values()}
    directions = {
        _resolve(served, op["channel"]["$ref"])["address"]: op["action"] for op in served["operations"].values()
    }

    assert set(by_address) == {*EVENT_TYPES, "user.events.dlq"}
    assert directions == {
        **dict.fromkeys(contract.ORDER_EVENT_TYPES, "send"),
        **dict.fromkeys(contract.USER_EVENT_TYPES, "receive"),
        "user.events.dlq": "send",
    }
    for event_type in EVENT_TYPES:
        (message_ref,) = [m["$ref"] for m in by_address[event_type]["messages"].values()]
        message = _resolve(served, message_ref)
        assert message["name"] == event_type
        assert message["payload"]["schemaFormat"] == "application/schema+json;version=draft-2020-12"
        assert _resolve(served, message["payload"]["schema"]["$ref"]) == contract.schema(event_type)
        assert _resolve(served, message["bindings"]["kafka"]["key"]["$ref"])["type"] == "string"
        if event_type in contract.ORDER_EVENT_TYPES:
            assert _resolve(served, message["headers"]["schema"]["$ref"]) == contract.schema(contract.ORDER_HEADERS)


def test_docs_field_tables_are_the_ones_generated_from_the_schemas() -> None:
    docs = contract_tools.DOCS.read_text()

    assert contract_tools.docs_with_tables(docs, contract_tools.load(contract_tools.CURRENT)) == docs, (
        "docs/events.md is out of date: run `make contract-docs`"
    )


def _good_row() -> dict[str, Any]:
    event_id = str(uuid.uuid4())
    return {
        "event_type": "order.cancelled",
        "key": "ada",
        "payload": {
            "event_id": event_id,
            "event_type": "order.cancelled",
            "timestamp": "2026-11-25T04:16:26.825553Z",
            "version": "1.0",
            "data": {
                "order_id": str(uuid.uuid4()),
                "user_id": "ada",
                "status": "cancelled",
                "order_version": 2,
                "reason": "changed my mind",
                "cancelled_at": "2026-11-25T04:16:26.825553Z",
            },
        },
        "headers": {
            "event_id": event_id,
            "event_type": "order.cancelled",
            "traceparent": f"00-{'a' * 32}-{'b' * 16}-01",
        },
    }


def test_the_outbox_check_passes_a_contract_event_and_names_each_fault() -> None:
    good = _good_row()
    bad = _good_row()
    bad["key"] = "bob"
    bad["payload"]["data"]["status"] = "shipped"
    bad["payload"]["data"]["undocumented"] = 1
    del bad["headers"]["traceparent"]

    assert outbox_row_problems(**good) == []
    assert outbox_row_problems(**bad) == [
        "order.cancelled payload: data: Additional properties are not allowed ('undocumented' was unexpected)",
        "order.cancelled headers: (root): 'traceparent' is a required property",
        "order.cancelled: key 'bob' is not data.user_id 'ada'",
    ]


def test_the_contract_ships_in_the_image_package() -> None:
    # The Dockerfile copies orders_project/ whole and .dockerignore leaves out only tests.
    dockerignore = (Path(contract_tools.REPO) / ".dockerignore").read_text().split()
    assert contract.CONTRACT_DIR.parent.name == "orders_project"
    assert not any(contract.CONTRACT_DIR.match(pattern) for pattern in dockerignore)
