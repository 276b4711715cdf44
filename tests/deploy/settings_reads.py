"""What orders_project/settings.py reads from the environment, parsed (not run): which
variables a production process needs set, and the topic names it defaults to. The
Terraform tests compare these with what the app release sets."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from typing import Any

from devstack.deploy.terraform import REPO

SETTINGS_FILE = REPO / "orders_project" / "settings.py"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class EnvRead:
    name: str
    reader: str  # env_str, env_int, env_list, ...
    default: ast.expr | None  # None: no default


_MISSING = object()
_COMPUTED = object()


def _env_name(node: ast.AST) -> str | None:
    """NAME for an env_*("NAME", ...) call, else None."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id.startswith("env_")
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


@cache
def settings_env_reads() -> tuple[EnvRead, ...]:
    """Every env_*("NAME", default) call in settings.py that production runs: not those
    in `if DEBUG:` bodies, nor those under an `if` that first checks the same variable
    (`if env_str("POD_IP", "-") != "-": ... env_str("POD_IP")`)."""
    tree = ast.parse(SETTINGS_FILE.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        debug_only = isinstance(node.test, ast.Name) and node.test.id == "DEBUG"
        checked = {name for inner in ast.walk(node.test) if (name := _env_name(inner))}
        for inner in (inner for statement in node.body for inner in ast.walk(statement)):
            if debug_only or _env_name(inner) in checked:
                skipped.add(id(inner))
    reads = []
    for node in ast.walk(tree):
        name = _env_name(node)
        if name is None or id(node) in skipped:
            continue
        assert isinstance(node, ast.Call)
        default = node.args[1] if len(node.args) > 1 else None
        default = next((keyword.value for keyword in node.keywords if keyword.arg == "default"), default)
        reads.append(EnvRead(name, node.func.id if isinstance(node.func, ast.Name) else "", default))
    return tuple(reads)


def production_default(read: EnvRead) -> Any:
    """The default a production process (DJANGO_DEBUG false) gets: a literal,
    _MISSING when there is none, _COMPUTED when it is computed."""
    expression = read.default
    if expression is None:
        return _MISSING
    if isinstance(expression, ast.IfExp) and isinstance(expression.test, ast.Name) and expression.test.id == "DEBUG":
        expression = expression.orelse
    try:
        return ast.literal_eval(expression)
    except ValueError:
        return _COMPUTED


def points_here(value: Any) -> bool:
    items = value if isinstance(value, list | tuple) else [value]
    return any(isinstance(item, str) and any(host in item for host in LOOPBACK_HOSTS) for item in items)


def production_must_set(read: EnvRead) -> bool:
    """No usable default in production: none at all (env_str raises), an empty one where
    DEBUG has a real one, or one that points at the process's own host."""
    default = production_default(read)
    if default is _MISSING or default is None:
        return True
    debug_dependent = isinstance(read.default, ast.IfExp)
    if debug_dependent and default in ("", [], ()):
        return True
    return points_here(default)


def settings_topic_envs() -> dict[str, str]:
    """KAFKA_TOPIC_* string settings (topic names) -> their default."""
    return {
        read.name: ast.literal_eval(read.default)
        for read in settings_env_reads()
        if read.name.startswith("KAFKA_TOPIC_") and read.reader == "env_str" and read.default is not None
    }
