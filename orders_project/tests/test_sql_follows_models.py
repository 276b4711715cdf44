"""Hand-written SQL in the product apps names tables and statuses as the models do.

Table names come from `Model._meta.db_table` and statuses go in as parameters (or from
the TextChoices): a literal `orders_order` or `'pending'` in a statement would keep
running against the old name after a model's table or a status's value changed.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from django.apps import apps
from django.conf import settings

PRODUCT_APPS = ("orders", "outbox", "users_cache", "orders_project")
# Bench code (bench_* commands, outbox/benchmark.py) is dev tooling on its way out of the
# product apps; it does not ship a statement the service runs.
_BENCH = re.compile(r"^(bench_.*|benchmark)\.py$")


def _product_modules() -> Iterator[Path]:
    for app in PRODUCT_APPS:
        for path in sorted((Path(settings.BASE_DIR) / app).rglob("*.py")):
            if {"tests", "migrations"} & set(path.parts) or _BENCH.match(path.name):
                continue
            yield path


def _strings(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _status_values() -> set[str]:
    values: set[str] = set()
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if field.name == "status" and field.choices:
                values.update(str(value) for value, _label in field.flatchoices)
    return values


def _literals() -> re.Pattern[str]:
    tables = sorted({model._meta.db_table for model in apps.get_models()}, key=len, reverse=True)
    statuses = sorted(_status_values(), key=len, reverse=True)
    table_names = "|".join(re.escape(table) for table in tables)
    quoted = "|".join(re.escape(f"'{status}'") for status in statuses)
    return re.compile(rf"\b(?:{table_names})\b|{quoted}")


def test_no_product_module_names_a_table_or_a_status_in_a_literal() -> None:
    pattern = _literals()
    found = [
        f"{path.relative_to(settings.BASE_DIR)}:{line}: {match.group(0)}"
        for path in _product_modules()
        for line, text in _strings(path)
        for match in pattern.finditer(text)
    ]

    assert found == [], (
        "Name tables by Model._meta.db_table (formatted into the SQL once, at import) and pass "
        "statuses as parameters:\n" + "\n".join(found)
    )
