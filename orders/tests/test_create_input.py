"""The create's body is read without the serializer when it has the plain shape, and then to the
very values the serializer gives; anything else (every refusal) is the serializer's to judge.

create_input_validate's shortcut (_create_input_plain) must never accept what
OrderCreateInputSerializer refuses, nor read a body to other values: these tests hold the two
equal on generated bodies near the edges of every field (types, blanks, lengths, NUL, lone
surrogates, decimals' shapes and bounds, unknown and missing fields).
"""

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from orders.api.serializers import OrderCreateInputSerializer, _create_input_plain, create_input_validate
from orders.services import ItemInput

ODD: list[Any] = [None, True, 0, 1.5, [], {}, [1]]
TEXT = st.one_of(
    st.text(max_size=70),
    st.sampled_from(["", " ", "\t\n", "a", " a ", "a" * 64, "a" * 65, " " + "a" * 64 + " ", "\x00", "a\x00"]),
    st.sampled_from(["\ud800", "a\udfff", "é", "ü" * 64, "\x1c", "\x85a", "\u0131"]),
    st.integers(-5, 5),
    st.sampled_from(ODD),
)
CURRENCY = st.one_of(
    st.sampled_from(["USD", "usd", " eur ", "Jpy", "XTS", "XXX", "xau", "US", "USDD", "\u0131NR", "ßd", "ﬁm"]),
    st.sampled_from(["U\x00D", "USD\x00"]),
    st.sampled_from(["", "   ", "\ud800SD", 840, 1.0, None, True]),
    st.text(max_size=4),
)
DECIMAL_TEXT = st.sampled_from(
    [
        *["4.5", "4.50", "4.505", "0", "0.00", "-0", "-1", "1000000", "1000000.00", "1000000.01", "9999999.99"],
        *["1e3", " 4.5 ", "4.", ".5", "NaN", "inf", "-Infinity", "", "00000004.50", "٤", "12345678.9", "4,5", "+4.5"],
    ]
)
PRICE = st.one_of(
    DECIMAL_TEXT,
    st.decimals(min_value=-1, max_value=2_000_000, places=3).map(str),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-1, 2_000_000),
    st.sampled_from(ODD),
)
QUANTITY = st.one_of(st.integers(-1, 10_002), st.sampled_from([True, 2.0, 2.5, "2", " 3 ", "1e2", None, [2]]))


@st.composite
def _item(draw: st.DrawFn) -> Any:
    item = {"product_id": draw(TEXT), "quantity": draw(QUANTITY), "price": draw(PRICE)}
    if draw(st.integers(0, 9)) == 0:
        del item[draw(st.sampled_from(sorted(item)))]
    if draw(st.integers(0, 19)) == 0:
        item["colour"] = "red"
    return item if draw(st.integers(0, 29)) else draw(st.sampled_from(ODD))


@st.composite
def _body(draw: st.DrawFn) -> Any:
    items = draw(st.one_of(st.lists(_item(), min_size=0, max_size=4), st.sampled_from(ODD)))
    body: dict[str, Any] = {"user_id": draw(TEXT), "currency": draw(CURRENCY), "items": items}
    if draw(st.booleans()):
        body["shipping_address"] = draw(st.one_of(TEXT, st.sampled_from(["x" * 500, "x" * 501, " " * 600])))
    total = draw(st.integers(0, 3))
    if total == 1:
        body["total_amount"] = draw(st.one_of(PRICE, st.none()))
    elif total == 2:
        body["total_amount"] = _sum(items)  # often the right total, in one of its spellings
    if draw(st.integers(0, 9)) == 0:
        del body[draw(st.sampled_from(sorted(body)))]
    if draw(st.integers(0, 19)) == 0:
        body["coupon"] = "FREE"
    return body if draw(st.integers(0, 49)) else draw(st.sampled_from(ODD))


def _sum(items: Any) -> Any:
    try:
        return str(sum(Decimal(str(item["price"])) * item["quantity"] for item in items))
    except Exception:
        return "0"


def _serializer(body: Any) -> dict[str, Any] | None:
    params = OrderCreateInputSerializer(data=body)
    return dict(params.validated_data) if params.is_valid() else None


def _assert_read_alike(body: Any) -> dict[str, Any] | None:
    plain, judged = _create_input_plain(body), _serializer(body)
    if plain is not None:
        assert judged is not None, f"the shortcut accepted what the serializer refuses: {body!r}"
        # repr: Decimal("4.5") == Decimal("4.50"), but they are written out differently.
        assert repr(sorted(plain.items())) == repr(sorted(judged.items()))
    return plain


@pytest.mark.fuzz
@settings(max_examples=3000, deadline=None)
@given(_body())
@example({"user_id": "u", "currency": "usd", "items": [{"product_id": "p", "quantity": 1, "price": 4.5}]})
@example({"user_id": "u", "currency": "USD", "items": [{"product_id": "p", "quantity": 1, "price": "1e3"}]})
@example({"user_id": "u", "currency": "\u0131NR", "items": [{"product_id": "p", "quantity": 1, "price": "1"}]})
@example(
    {"user_id": "u", "currency": "USD", "total_amount": 1, "items": [{"product_id": "p", "quantity": 2, "price": 0.5}]}
)
def test_the_shortcut_reads_a_body_as_the_serializer_does_or_leaves_it_to_the_serializer(body):
    _assert_read_alike(body)


@pytest.mark.parametrize(
    "body",
    [
        # the API bench's body, the README's, and the seed example's shape
        {"user_id": "bench-1", "currency": "USD", "items": [{"product_id": "p1", "quantity": 2, "price": "4.50"}]},
        {
            "user_id": "user123",
            "total_amount": 99.98,
            "currency": "USD",
            "items": [{"product_id": "prod1", "quantity": 2, "price": 49.99}],
        },
        {
            "user_id": " user-ü ",
            "currency": "eur",
            "shipping_address": "1 Rue de l'Église",
            "items": [{"product_id": f"p{n}", "quantity": 10_000, "price": "1000000.00"} for n in range(100)],
            "total_amount": None,
        },
    ],
)
def test_plain_bodies_take_the_shortcut_to_the_serializers_values(body):
    plain = _assert_read_alike(body)

    assert plain is not None
    assert create_input_validate(body) == plain
    assert all(isinstance(item, ItemInput) for item in plain["items"])


def test_a_refused_body_raises_the_serializers_error():
    body = {"user_id": "", "currency": "XTS", "items": []}

    with pytest.raises(serializers.ValidationError) as raised:
        create_input_validate(body)

    assert set(raised.value.detail) == {"user_id", "currency", "items"}
