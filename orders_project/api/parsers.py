"""The API's JSON parser: UTF-8 only, nesting depth bounded before parsing.

DRF's JSONParser hands the body to `json.load`, which recurses once per level of
nesting: a body of a few thousand `[` raises RecursionError (a 500), and one a
little shallower parses but can exhaust the stack later, in validation or when
the error is rendered. No request of this API nests deeper than a handful of
levels, so anything deeper than MAX_DEPTH is refused as malformed before
`json.loads` sees it, by a check linear in the body's size (json_depth.py).

JSON exchanged between systems is UTF-8 (RFC 8259 section 8.1): a body that
declares another charset, or one Python does not know (which Django silently
ignores), is 415 rather than decoded by guesswork.
"""

import codecs
from typing import Any

from django.utils.http import parse_header_parameters
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

from orders_project.api.json_depth import MAX_DEPTH, json_too_deep

_UTF8 = {"utf-8", "ascii"}


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        _, params = parse_header_parameters(media_type or "")
        charset = params.get("charset", "utf-8")
        try:
            supported = codecs.lookup(charset).name in _UTF8
        except LookupError:
            supported = False
        if not supported:
            raise exceptions.UnsupportedMediaType(
                media_type or "", detail=f"JSON must be sent as UTF-8; charset {charset!r} is not accepted."
            )
        body = stream.read() if stream is not None else b""
        if json_too_deep(body):
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels.")
        try:
            return json.loads(body.decode("utf-8"), parse_constant=json.strict_constant if self.strict else None)
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error - not UTF-8: {exc.reason} at byte {exc.start}.") from None
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
