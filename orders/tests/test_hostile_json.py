"""Hostile JSON bodies of 10 KB and 1 MB: each is refused as malformed, or parsed and validated, at once.

With MAX_DEPTH + 6 brackets open before its hostile part, every shape but the
one whose brackets are inside a string is too deep; with exactly MAX_DEPTH open,
json.loads itself refuses what is malformed. None may take more than linear work
(orders_project/tests/test_json_depth.py), which the 1 MB cases would show here
as a request that never ends.
"""

import pytest

from devstack.hostile_json import DEEP, SHAPES
from orders.models import Order
from orders_project.api.json_depth import MAX_DEPTH
from tests.support.api import ORDERS_URL, assert_error

pytestmark = pytest.mark.django_db

TOO_DEEP = f"JSON parse error - nested deeper than {MAX_DEPTH} levels."
# shape -> what the parser says at depth MAX_DEPTH (None: the body parses)
AT_THE_LIMIT = {
    "unterminated-escaped-quotes": "JSON parse error - Unterminated string starting at: line 1 column 65 (char 64)",
    "unterminated-backslashes": "JSON parse error - Unterminated string starting at: line 1 column 65 (char 64)",
    "escapes-in-strings": "JSON parse error - Expecting value: line 1 column {end} (char {last})",
    "brackets-in-a-string": None,
    "quotes": "JSON parse error - Expecting ',' delimiter: line 1 column 67 (char 66)",
    "deep-nesting": TOO_DEEP,
    "open-close": TOO_DEEP,
    "long-number": "JSON parse error - Exceeds the limit (4300 digits) for integer string conversion",
}


def _post(client, body: bytes):
    return client.generic("POST", ORDERS_URL, body, content_type="application/json")


@pytest.mark.parametrize("size", [10_000, 1_000_000], ids=["10KB", "1MB"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_hostile_body_is_refused_when_too_deep(api_client, shape, size):
    response = _post(api_client, SHAPES[shape](size, DEEP))

    if AT_THE_LIMIT[shape] is None:  # brackets inside a string do not count: parsed, then validated
        assert_error(
            response,
            400,
            "validation_error",
            {
                "user_id": ["Ensure this field has no more than 64 characters."],
                "currency": ["This field is required."],
                "items": ["This field is required."],
            },
        )
    else:
        assert_error(response, 400, "malformed_request")
        assert response.json()["message"] == TOO_DEEP
    assert Order.objects.count() == 0


@pytest.mark.parametrize("size", [10_000, 1_000_000], ids=["10KB", "1MB"])
@pytest.mark.parametrize("shape", [name for name, message in AT_THE_LIMIT.items() if message is not None])
def test_a_hostile_body_at_the_depth_limit_is_refused_by_the_json_parser(api_client, shape, size):
    body = SHAPES[shape](size, MAX_DEPTH)
    message = AT_THE_LIMIT[shape]
    assert message is not None

    response = _post(api_client, body)

    assert_error(response, 400, "malformed_request")
    assert response.json()["message"].startswith(message.format(end=len(body) + 1, last=len(body)))
    assert Order.objects.count() == 0
