"""The import layers (tests -> devstack -> the service) that `make lint` enforces.

The import-linter contracts live in pyproject.toml; these tests run `lint-imports`
on a copy of the packages with one import added, to show that the contract it
breaks is really checked. What import-linter does not check (a private name taken
from another package's module) is checked here by walking the source.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICE = ("orders", "outbox", "users_cache", "orders_project")
FIRST_PARTY = (*SERVICE, "devstack", "tests")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _copy(folder: Path) -> Path:
    """The Python files of every package the contracts name, and pyproject.toml."""

    def not_python(directory: str, names: list[str]) -> set[str]:
        return {name for name in names if not name.endswith(".py") and not (Path(directory) / name).is_dir()}

    for package in FIRST_PARTY:
        shutil.copytree(REPO / package, folder / package, ignore=not_python)
    shutil.copy(REPO / "pyproject.toml", folder)
    return folder


def _lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=folder,
        env={**os.environ, "COLUMNS": "300"},  # one line per contract in the summary
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.processes  # lint-imports in a fresh interpreter
def test_the_contracts_hold_for_the_code_as_it_is(tmp_path: Path) -> None:
    done = _lint_imports(_copy(tmp_path))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.replace("0 broken", "")


@pytest.mark.processes  # lint-imports in a fresh interpreter, once per case
@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("orders/services_probe.py", "from devstack.procs import free_port", "The service never imports devstack"),
        ("orders_project/probe.py", "import tests.deploy.chart", "The service never imports devstack"),
        ("orders/api/probe.py", "from orders.tests import factories", "The service never imports devstack"),
        ("outbox/probe.py", "from users_cache.tests import conftest", "The service never imports devstack"),
        ("devstack/probe.py", "from orders.tests import factories", "devstack never imports tests"),
        ("outbox/probe.py", "from orders.lifecycle import orders_advance", "outbox and users_cache reach orders only"),
        ("users_cache/probe.py", "from orders.api import views", "outbox and users_cache reach orders only"),
    ],
)
def test_lint_imports_fails_on_an_import_across_the_layers(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    folder = _copy(tmp_path)
    (folder / module).write_text(f"{line}\n")

    done = _lint_imports(folder)

    assert done.returncode == 1, done.stdout + done.stderr
    broken = [text for text in done.stdout.splitlines() if " BROKEN" in text]
    assert len(broken) == 1 and broken[0].startswith(contract), done.stdout
    assert module.removesuffix(".py").replace("/", ".") in done.stdout


def _private_imports_across_packages(root: Path) -> list[str]:
    """`from a.b import _name` where `a` is a package of ours other than the importer's own."""
    found = []
    for package in FIRST_PARTY:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                    continue
                top = node.module.split(".")[0]
                if top == package or top not in FIRST_PARTY:
                    continue
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(root)}:{node.lineno}: from {node.module} import {alias.name}")
    return found


def test_no_module_imports_a_private_name_from_another_package() -> None:
    assert _private_imports_across_packages(REPO) == []


def test_the_private_name_check_finds_one(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    for package in FIRST_PARTY:
        (tmp_path / package).mkdir(exist_ok=True)
    (tmp_path / "tests" / "test_x.py").write_text("from users_cache.status import _hidden, visible\n")
    (tmp_path / "orders" / "x.py").write_text("from orders.lifecycle import _same_package\nfrom os import _exit\n")

    assert _private_imports_across_packages(tmp_path) == ["tests/test_x.py:1: from users_cache.status import _hidden"]
