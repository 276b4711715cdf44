"""make contract-check: a breaking schema change fails naming event and field, unless versioned and noted."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from devstack import contract

RELEASED = contract.load(contract.RELEASED)
DOCS = contract.DOCS.read_text()


def current() -> dict[str, dict[str, Any]]:
    return copy.deepcopy(RELEASED)


def data(schemas: dict[str, dict[str, Any]], event_type: str) -> dict[str, Any]:
    return schemas[event_type]["properties"]["data"]


def test_the_repository_passes_its_own_check() -> None:
    assert contract.run_check() == 0


def test_the_released_copy_is_a_copy_of_the_schemas_until_something_changes() -> None:
    assert contract.load(contract.CURRENT).keys() == RELEASED.keys()


def test_an_optional_field_added_passes() -> None:
    schemas = current()
    data(schemas, "order.created")["properties"]["coupon"] = {"type": "string", "description": "new, optional"}

    assert contract.check(RELEASED, schemas, DOCS) == []


def test_an_enum_value_added_passes() -> None:
    schemas = current()
    data(schemas, "user.created")["properties"]["status"]["enum"].append("suspended")

    assert contract.check(RELEASED, schemas, DOCS) == []


def test_a_removed_field_fails_naming_event_and_field() -> None:
    schemas = current()
    del data(schemas, "order.shipped")["properties"]["carrier"]
    data(schemas, "order.shipped")["required"].remove("carrier")

    assert contract.check(RELEASED, schemas, DOCS) == ["order.shipped: data.carrier: removed"]


def test_a_retyped_field_fails() -> None:
    schemas = current()
    price = data(schemas, "order.created")["properties"]["items"]["items"]["properties"]["price"]
    price.clear()
    price.update({"type": "number"})

    assert contract.check(RELEASED, schemas, DOCS) == [
        "order.created: data.items[].price: retyped ['string'] -> ['number']"
    ]


def test_a_required_field_added_fails() -> None:
    schemas = current()
    data(schemas, "user.updated")["required"].append("email")

    assert contract.check(RELEASED, schemas, DOCS) == ["user.updated: data.email: now required"]


def test_a_narrowed_enum_and_tightened_additional_properties_fail() -> None:
    schemas = current()
    data(schemas, "user.deleted")["additionalProperties"] = False
    data(schemas, "user.created")["properties"]["status"]["enum"] = ["active"]

    assert contract.check(RELEASED, schemas, DOCS) == [
        "user.created: data.status: enum narrowed, ['inactive'] removed",
        "user.deleted: data: additionalProperties tightened (unknown fields now refused)",
    ]


def test_a_removed_event_fails() -> None:
    schemas = current()
    del schemas["order.cancelled"]

    assert contract.check(RELEASED, schemas, DOCS) == ["order.cancelled: removed (consumers still read it)"]


def _breaking_v2() -> dict[str, dict[str, Any]]:
    schemas = current()
    del data(schemas, "order.shipped")["properties"]["carrier"]
    data(schemas, "order.shipped")["required"].remove("carrier")
    schemas["order.shipped"]["properties"]["version"]["const"] = "2.0"
    return schemas


def test_a_raised_version_without_a_migration_note_still_fails() -> None:
    assert contract.check(RELEASED, _breaking_v2(), DOCS) == [
        "order.shipped: version 1.0 -> 2.0 needs a migration note in docs/events.md "
        "(a heading '### order.shipped 1.0 → 2.0')",
        "order.shipped: data.carrier: removed",
    ]


def test_a_raised_version_with_a_migration_note_passes() -> None:
    docs = DOCS + "\n### order.shipped 1.0 → 2.0\n\n`carrier` is gone: read it from the tracking service.\n"

    assert contract.check(RELEASED, _breaking_v2(), docs) == []


def test_the_command_fails_on_a_breaking_change_and_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a working copy whose order.created lost a field
    changed = tmp_path / "schemas"
    changed.mkdir()
    for name, schema in _breaking_v2().items():
        (changed / f"{name}.json").write_text(json.dumps(schema))

    # when the check runs against the released copy
    status = contract.run_check(current=changed)

    # then it fails, naming event and field
    assert status == 1
    errors = capsys.readouterr().err
    assert "contract-check: BREAKING order.shipped: data.carrier: removed" in errors
    assert "docs/events.md: field tables differ from the schemas" in errors


def test_docs_tables_are_rewritten_from_the_schemas(tmp_path: Path) -> None:
    docs = tmp_path / "events.md"
    docs.write_text(f"# Events\n\n{contract.BEGIN}\nstale\n{contract.END}\n\nprose after\n")

    contract.run_docs(docs_path=docs)

    text = docs.read_text()
    assert "stale" not in text and text.endswith("\n\nprose after\n")
    assert "| `data.items[].price` | string (`^[0-9]+\\.[0-9]{2}$`) | yes | Unit price" in text
    assert "#### `order.shipped` (version 1.0)" in text
