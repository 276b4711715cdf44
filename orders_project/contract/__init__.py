"""The event contract: JSON Schemas (draft 2020-12) of every event, and the AsyncAPI 3 document.

The files beside this module are the source of truth (docs/events.md):
`schemas/<event type>.json` for each event's value, `schemas/*-headers.json` for
Kafka headers, `asyncapi.yaml` for topics, keys and bindings. They live in the
project package because the service itself reads them (served next to the
OpenAPI schema, and used by the user-event consumer), so they ship in the image;
both `orders` (which produces the order events) and `users_cache` (which consumes
the user events) use them, so neither app owns them.
"""

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

CONTRACT_DIR = Path(__file__).resolve().parent
SCHEMA_DIR = CONTRACT_DIR / "schemas"
ASYNCAPI_PATH = CONTRACT_DIR / "asyncapi.yaml"
ORDER_EVENT_TYPES = ("order.created", "order.confirmed", "order.shipped", "order.cancelled", "order.voided")
USER_EVENT_TYPES = ("user.created", "user.updated", "user.deleted")
ORDER_HEADERS = "order-event-headers"
DLQ_HEADERS = "user-events-dlq-headers"


@cache
def schema(name: str) -> dict[str, Any]:
    """The schema `schemas/<name>.json` (an event type, or a headers schema name). KeyError if there is none."""
    path = SCHEMA_DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(name)
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name))


def event_version(event_type: str) -> str:
    """The envelope `version` this event's schema fixes (the const producers stamp)."""
    return str(schema(event_type)["properties"]["version"]["const"])


def error_path(error: ValidationError) -> str:
    """`data.items[0].price` for an error's location; `(root)` for the document itself."""
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(root)"


@cache
def _compiled(name: str) -> jsonschema_rs.Draft202012Validator:
    # Formats are annotations only, as in jsonschema's validator above.
    return jsonschema_rs.Draft202012Validator(schema(name), validate_formats=False)


def first_error(name: str, instance: Any) -> str | None:
    """The most relevant reason `instance` breaks schema `name`, as "path: message"; None if it is valid.

    The compiled validator answers "valid?" (the consumer asks for every message, and
    jsonschema's is ~50x slower); jsonschema then gives a refusal its reason.
    """
    if _compiled(name).is_valid(instance):
        return None
    error = best_match(validator(name).iter_errors(instance))
    if error is None:
        return None
    return f"{error_path(error)}: {error.message}"


def _inline_file_refs(node: Any) -> Any:
    """Replace {"$ref": "schemas/x.json"} by the file's schema, so the served document stands alone."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("schemas/") and ref.endswith(".json"):
            return copy.deepcopy(schema(ref.removeprefix("schemas/").removesuffix(".json")))
        return {key: _inline_file_refs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_file_refs(value) for value in node]
    return node


@cache
def _asyncapi_document() -> dict[str, Any]:
    source = yaml.safe_load(ASYNCAPI_PATH.read_text())
    document: dict[str, Any] = _inline_file_refs(source)
    return document


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3 document with every schema file inlined (a copy: callers may change it)."""
    return copy.deepcopy(_asyncapi_document())
