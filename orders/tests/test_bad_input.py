"""Hostile or broken requests get a 4xx in the one error shape, never a 500."""

import json

import pytest
from django.test import Client

from orders.models import IdempotencyKey, Order
from orders.tests.factories import SEED_PAYLOAD
from tests.support.api import ORDERS_URL, assert_error

pytestmark = pytest.mark.django_db

LOGIN_URL = "/api-auth/login/"


def _post_json(client, body: str | bytes, content_type: str = "application/json"):
    return client.generic("POST", ORDERS_URL, body, content_type=content_type)


def test_a_body_over_the_size_limit_is_413_in_the_api(api_client, settings):
    # given a body one byte over Django's limit
    body = '{"user_id": "' + "u" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + '"}'

    response = _post_json(api_client, body)

    assert_error(response, 413, "request_too_large")
    assert response.json()["message"] == (
        "The request body is larger than 2621440 bytes, the most this service accepts."
    )
    assert Order.objects.count() == 0


def test_a_form_over_the_size_limit_is_413_outside_the_api(settings):
    body = "username=alice&password=" + "p" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = Client().post(LOGIN_URL, body, content_type="application/x-www-form-urlencoded")

    assert_error(response, 413, "request_too_large")


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,  # RecursionError inside json.loads
        "[" * 5_000 + "]" * 5_000,  # parses, but too deep to validate or render safely
        '{"items": ' + '{"a": ' * 65 + "1" + "}" * 65 + "}",
        '{"user_id": "[[[[", "items": [' + "[" * 65 + "]" * 65 + "]}",  # brackets in strings do not count
    ],
    ids=["arrays-100000", "arrays-5000", "objects-66", "strings-and-arrays-67"],
)
def test_json_nested_too_deep_is_400_malformed(api_client, body):
    response = _post_json(api_client, body)

    assert_error(response, 400, "malformed_request")
    assert response.json()["message"] == "JSON parse error - nested deeper than 64 levels."


def test_json_nested_64_levels_is_parsed_and_validated(api_client):
    # the outer object is level 1, the user_id arrays levels 2 to 64
    body = '{"user_id": ' + "[" * 63 + "]" * 63 + "}"

    response = _post_json(api_client, body)

    assert_error(
        response,
        400,
        "validation_error",
        {
            "user_id": ["Not a valid string."],
            "currency": ["This field is required."],
            "items": ["This field is required."],
        },
    )


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ('{"\\ud800": 1}', {"\\ud800": ["Unknown field."]}),
        ('{"\\udfff\\ud800x": 1}', {"\\udfff\\ud800x": ["Unknown field."]}),
    ],
    ids=["lone-high", "reversed-pair"],
)
def test_an_unknown_field_named_with_a_lone_surrogate_is_400(api_client, body, details):
    payload = json.dumps(SEED_PAYLOAD)[:-1] + ", " + body[1:]

    response = _post_json(api_client, payload)

    assert_error(response, 400, "validation_error", details)
    assert Order.objects.count() == 0


def test_an_unknown_item_field_named_with_a_lone_surrogate_is_400(api_client):
    payload = (
        '{"user_id": "u1", "currency": "USD", "items": [{"product_id": "p", "quantity": 1, "price": 1, "\\ud800": 0}]}'
    )

    response = _post_json(api_client, payload)

    assert_error(response, 400, "validation_error", {"items": {"0": {"\\ud800": ["Unknown field."]}}})


SURROGATE = "Surrogate characters are not allowed: U+D800."


@pytest.mark.parametrize(
    ("changes", "details"),
    [
        ({"shipping_address": "Main St \ud800"}, {"shipping_address": [SURROGATE]}),
        ({"user_id": "\ud800"}, {"user_id": [SURROGATE]}),
        ({"currency": "U\ud800D"}, {"currency": [SURROGATE]}),
        (
            {"items": [{"product_id": "p\ud800", "quantity": 1, "price": 1}]},
            {"items": {"0": {"product_id": [SURROGATE]}}},
        ),
    ],
    ids=["shipping_address", "user_id", "currency", "product_id"],
)
def test_a_lone_surrogate_in_a_string_value_is_400(api_client, changes, details):
    # json.dumps writes the surrogate as the escape \ud800, as a hostile client would
    payload = {**SEED_PAYLOAD, **changes}
    payload.pop("total_amount")

    response = _post_json(api_client, json.dumps(payload))

    assert_error(response, 400, "validation_error", details)
    assert Order.objects.count() == 0


def test_a_lone_surrogate_in_a_cancel_reason_is_400(api_client):
    order_id = api_client.post(ORDERS_URL, SEED_PAYLOAD, format="json").json()["id"]

    response = api_client.generic(
        "POST", f"{ORDERS_URL}{order_id}/cancel/", '{"reason": "\\ud800"}', content_type="application/json"
    )

    assert_error(response, 400, "validation_error", {"reason": [SURROGATE]})
    assert Order.objects.get().status == "pending"


@pytest.mark.parametrize("charset", ["nonexistent", "latin-1", "utf-16", "base64"])
def test_json_in_a_charset_other_than_utf8_is_415(api_client, charset):
    response = _post_json(api_client, json.dumps(SEED_PAYLOAD), f"application/json; charset={charset}")

    assert_error(response, 415, "unsupported_media_type")
    assert response.json()["message"] == f"JSON must be sent as UTF-8; charset {charset!r} is not accepted."
    assert IdempotencyKey.objects.count() == 0
    assert Order.objects.count() == 0


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_json_declared_utf8_is_accepted(api_client, charset):
    response = _post_json(api_client, json.dumps(SEED_PAYLOAD), f"application/json; charset={charset}")

    assert response.status_code == 201


def test_json_that_is_not_valid_utf8_is_400(api_client):
    response = _post_json(api_client, b'{"user_id": "\xff"}', "application/json; charset=utf-8")

    assert_error(response, 400, "malformed_request")
    assert response.json()["message"] == "JSON parse error - not UTF-8: invalid start byte at byte 13."


def test_a_form_in_an_undecodable_charset_is_400_outside_the_api():
    response = Client().generic(
        "POST",
        LOGIN_URL,
        b"username=alice&password=x",
        content_type="application/x-www-form-urlencoded; charset=utf-16",
    )

    assert_error(response, 400, "malformed_request")


def _choice(value: str) -> dict[str, list[str]]:
    return {"status": [f"Select a valid choice. {value} is not one of the available choices."]}


@pytest.mark.parametrize(
    ("path", "status", "code", "details"),
    [
        (f"{ORDERS_URL}?status=%ff", 400, "validation_error", _choice("\ufffd")),
        (f"{ORDERS_URL}?status=%00", 400, "validation_error", _choice("\x00")),
        (f"{ORDERS_URL}?user_id=%00", 400, "validation_error", {"user_id": ["Null characters are not allowed."]}),
        (
            f"{ORDERS_URL}?cursor=%00",
            400,
            "validation_error",
            {"cursor": ["Not a cursor from this API's `next` link."]},
        ),
        (f"{ORDERS_URL}%00/", 404, "not_found", {}),
        (f"{ORDERS_URL}%ff/", 404, "not_found", {}),
        (f"{ORDERS_URL}%00/history/", 404, "not_found", {}),
        (f"{ORDERS_URL}%00/cancel/", 404, "not_found", {}),
    ],
)
def test_bad_bytes_in_the_path_or_query_are_4xx(api_client, path, status, code, details):
    response = api_client.post(path) if path.endswith("cancel/") else api_client.get(path)

    assert_error(response, status, code, details)


def test_a_surrogate_encoded_in_the_query_is_read_as_replacement_characters(api_client):
    # UTF-8 has no surrogates: their would-be bytes decode to U+FFFD and simply match nothing
    response = api_client.get(f"{ORDERS_URL}?user_id=%ed%a0%80")

    assert (response.status_code, response.json()["count"]) == (200, 0)


def test_a_time_offset_postgresql_does_not_accept_is_read_in_utc(api_client):
    # Found by Schemathesis: Python accepts offsets to +/-23:59, PostgreSQL to +/-15:59 (was a 500)
    response = api_client.get(f"{ORDERS_URL}?created_before=0156-09-18T16:26:51-18:44")

    assert (response.status_code, response.json()["count"]) == (200, 0)


def test_a_moment_before_year_1_in_utc_is_400(api_client):
    response = api_client.get(f"{ORDERS_URL}?created_after=0001-01-01T00:00:00%2B05:00")

    assert_error(
        response, 400, "validation_error", {"created_after": ["Enter a date-time between the years 1 and 9999 in UTC."]}
    )
