"""docs/configuration.md lists every environment variable the product code reads.

The variables are found by reading the code, not by a list kept beside it: an
`env_*` call (orders_project/env.py) or an `os.environ` / `os.getenv` read in
the packages the image ships. A variable read with a name this scan cannot
resolve to a literal fails too, so a new read cannot hide from the docs.
"""

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
PRODUCT_PACKAGES = ("orders", "outbox", "users_cache", "orders_project")
ENV_READERS = {"env_str", "env_int", "env_bool", "env_list", "env_rate"}
# Variables read by libraries, not by this code: the doc lists them under this heading.
LIBRARY_SECTION = "## Read by the libraries"
_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")


@dataclass(frozen=True)
class Read:
    name: str
    where: str
    reader: str
    default: ast.expr | None
    maximum: ast.expr | None


def _product_files() -> list[Path]:
    files = []
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "tests" in parts or "migrations" in parts or path.name == "settings_test.py":
                continue
            files.append(path)
    return files


def _string_bindings(tree: ast.Module) -> dict[str, set[str]]:
    """Names bound to string literals: `NAME = "X"`, and `for name in ("X", "Y")` (loops and comprehensions)."""
    bound: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, set()).add(node.value.value)
        if (
            isinstance(node, (ast.For, ast.comprehension))
            and isinstance(node.target, ast.Name)
            and isinstance(node.iter, (ast.Tuple, ast.List))
        ):
            values = {item.value for item in node.iter.elts if isinstance(item, ast.Constant)}
            strings = {value for value in values if isinstance(value, str)}
            if len(strings) == len(node.iter.elts):
                bound.setdefault(node.target.id, set()).update(strings)
    return bound


def _is_os_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)


def _name_argument(call_or_subscript: ast.AST) -> tuple[str, ast.expr | None] | None:
    """The (reader, name expression) of an environment read, or None if the node is not one."""
    node = call_or_subscript
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_os_environ(node.value):
        return "os.environ", node.slice
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id in ENV_READERS:
        return func.id, node.args[0]
    if isinstance(func, ast.Attribute) and func.attr == "get" and _is_os_environ(func.value):
        return "os.environ.get", node.args[0]
    if isinstance(func, ast.Attribute) and func.attr == "getenv":
        return "os.getenv", node.args[0]
    return None


def _reads() -> tuple[list[Read], list[str]]:
    reads: list[Read] = []
    unresolved: list[str] = []
    for path in _product_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        bound = _string_bindings(tree)
        for node in ast.walk(tree):
            found = _name_argument(node)
            if found is None:
                continue
            reader, argument = found
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                names = {argument.value}
            elif isinstance(argument, ast.Name) and argument.id in bound:
                names = bound[argument.id]
            else:
                if path.name == "env.py" and isinstance(argument, ast.Name) and argument.id == "name":
                    continue  # the readers themselves
                unresolved.append(where)
                continue
            call = node if isinstance(node, ast.Call) else None
            default = call.args[1] if call is not None and len(call.args) > 1 else None
            maximum = next((kw.value for kw in (call.keywords if call else []) if kw.arg == "maximum"), None)
            reads.extend(Read(name, where, reader, default, maximum) for name in names)
    return reads, unresolved


def _documented() -> dict[str, list[str]]:
    """Each documented variable (first column of a table row) -> the row's cells; library ones included."""
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        for name in _NAME.findall(cells[0]):
            rows[name] = cells
    return rows


def _library_variables() -> set[str]:
    text = DOC.read_text()
    section = text.split(LIBRARY_SECTION, 1)[1].split("\n## ", 1)[0] if LIBRARY_SECTION in text else ""
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for line in rows for name in _NAME.findall(line.split("|")[1])}


def test_every_variable_the_code_reads_is_documented() -> None:
    reads, unresolved = _reads()
    documented = _documented()

    missing = sorted({f"{read.name} ({read.where})" for read in reads if read.name not in documented})

    assert unresolved == [], f"environment reads whose variable name is not a literal: {unresolved}"
    assert missing == [], f"read by the code but not in docs/configuration.md: {missing}"
    # The scan sees the settings' reads (a broken scan must not pass by finding nothing).
    assert {"DJANGO_SECRET_KEY", "POSTGRES_SERVER", "API_NUM_PROXIES", "GUNICORN_WORKERS"} <= {r.name for r in reads}


def test_every_documented_variable_is_read() -> None:
    reads, _ = _reads()
    read_names = {read.name for read in reads}

    stale = sorted(set(_documented()) - read_names - _library_variables())

    assert stale == [], f"in docs/configuration.md but read by no product code (or list it under {LIBRARY_SECTION!r})"


def _literal_default(read: Read) -> list[str] | None:
    """How the doc must spell a literal default: each value in backticks, or [] for an empty one."""
    node = read.default
    if not isinstance(node, (ast.Constant, ast.List)):
        return None
    items = node.elts if isinstance(node, ast.List) else [node]
    values = [item.value for item in items if isinstance(item, ast.Constant)]
    if len(values) != len(items):
        return None
    if values in ([""], ["-"], []):
        return []
    return [f"`{str(value).lower() if isinstance(value, bool) else str(value)}`" for value in values]


def test_documented_defaults_and_bounds_match_the_code() -> None:
    reads, _ = _reads()
    documented = _documented()
    wrong = []

    for read in reads:
        cells = documented.get(read.name)
        if cells is None or len(cells) < 4:
            continue  # reported by the test above, or a library variable
        default_cell, wrong_value_cell = cells[1], cells[3]
        expected = _literal_default(read)
        if expected == [] and not re.search(r"empty|unset|none", default_cell, re.I):
            wrong.append(f"{read.name}: default is empty, the doc says {default_cell!r}")
        elif expected and not all(value in default_cell for value in expected):
            wrong.append(f"{read.name}: default {expected}, the doc says {default_cell!r}")
        if isinstance(read.maximum, ast.Constant) and str(read.maximum.value) not in wrong_value_cell:
            wrong.append(f"{read.name}: at most {read.maximum.value!r}, the doc says {wrong_value_cell!r}")

    assert wrong == []
