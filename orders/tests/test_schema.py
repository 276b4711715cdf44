"""/api/schema/ is a valid OpenAPI 3 document that tells the truth about every endpoint."""

import io

import pytest
import yaml
from django.core.management import call_command
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db

ERROR_REF = {"$ref": "#/components/schemas/Error"}
# Every operation and the statuses it documents (429, 500 and 503 on all: rate limits, outages, the unexpected).
OPERATIONS = {
    ("/api/v1/orders/", "get"): {"200", "400", "401", "429", "500", "503"},
    ("/api/v1/orders/", "post"): {"201", "400", "401", "403", "409", "415", "422", "429", "500", "503"},
    ("/api/v1/orders/{id}/", "get"): {"200", "401", "404", "429", "500", "503"},
    ("/api/v1/orders/{id}/history/", "get"): {"200", "401", "404", "429", "500", "503"},
    ("/api/v1/orders/{id}/cancel/", "post"): {"200", "400", "401", "404", "409", "415", "429", "500", "503"},
}


@pytest.fixture
def schema(api_client):
    response = api_client.get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi; charset=utf-8"
    return yaml.safe_load(response.content)


def test_schema_is_valid_openapi_3(schema):
    validate(schema)  # raises OpenAPIValidationError on any fault

    assert schema["openapi"].startswith("3.")


def test_schema_is_served_as_json_too(api_client, schema):
    response = api_client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert response.json() == schema


def test_schema_lists_exactly_the_offered_operations(schema):
    offered = {(path, method) for path, ops in schema["paths"].items() for method in ops if method != "parameters"}

    assert offered == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method"), sorted(OPERATIONS))
def test_every_operation_documents_its_error_responses_in_the_error_shape(schema, path, method):
    responses = schema["paths"][path][method]["responses"]

    assert set(responses) == OPERATIONS[(path, method)]
    for status, response in responses.items():
        if status.startswith("4") or status.startswith("5"):
            assert response["content"]["application/json"]["schema"] == ERROR_REF, status
            assert response["description"], status


@pytest.mark.parametrize(("path", "method"), sorted(OPERATIONS))
def test_every_operation_requires_token_or_session_auth(schema, path, method):
    assert schema["paths"][path][method]["security"] == [{"tokenAuth": []}, {"cookieAuth": []}]


def test_the_token_scheme_is_knoxs_header_token(schema):
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }


def test_error_component_has_code_message_details(schema):
    error = schema["components"]["schemas"]["Error"]

    assert set(error["properties"]) == {"code", "message", "details"}
    assert sorted(error["required"]) == ["code", "details", "message"]


def test_list_documents_its_filters_and_paging(schema):
    operation = schema["paths"]["/api/v1/orders/"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}

    assert set(params) == {"status", "user_id", "created_after", "created_before", "skip", "limit", "cursor"}
    assert (params["skip"]["schema"]["maximum"], params["limit"]["schema"]["maximum"]) == (10_000, 100)
    assert params["status"]["schema"]["enum"] == ["cancelled", "confirmed", "pending", "shipped"]
    page = schema["components"]["schemas"]["PaginatedOrderList"]
    assert sorted(page["required"]) == ["count", "data", "next", "previous"]
    assert page["properties"]["data"] == {"type": "array", "items": {"$ref": "#/components/schemas/Order"}}


def test_create_documents_the_idempotency_key_header(schema):
    operation = schema["paths"]["/api/v1/orders/"]["post"]

    headers = [p for p in operation["parameters"] if p["in"] == "header"]
    assert [h["name"] for h in headers] == ["Idempotency-Key"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/OrderCreateInputRequest"}
    assert sorted(schema["components"]["schemas"]["OrderCreateInputRequest"]["required"]) == [
        "currency",
        "items",
        "user_id",
    ]


def test_history_is_documented_as_the_plain_list_it_returns(schema):
    # The history action answers a JSON array, unpaged and unfiltered.
    operation = schema["paths"]["/api/v1/orders/{id}/history/"]["get"]

    assert [p["name"] for p in operation["parameters"]] == ["id"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/OrderStatusChange"},
    }


def test_schema_generates_without_warnings(tmp_path):
    # drf-spectacular's own check: a warning means some part of an endpoint was guessed.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"), stderr=io.StringIO()
    )

    validate(yaml.safe_load((tmp_path / "schema.yaml").read_text()))


def test_docs_page_is_served(api_client):
    response = api_client.get("/api/docs/")

    assert response.status_code == 200
    assert b"/api/schema/" in response.content
