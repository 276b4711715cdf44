"""Test code keeps its shape: helpers in plain modules (tests/support), fixtures in conftest.py.

A conftest imported as a module is loaded twice (once by pytest, once by the import),
and a helper kept in one is out of reach of the other apps' tests.
"""

import ast
import functools
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def python_files() -> list[Path]:
    """The repository's Python files; hidden folders (.venv, .dev, .git) are not walked."""
    found = []
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".") and name != "__pycache__")
        found += [Path(folder) / name for name in sorted(files) if name.endswith(".py")]
    return found


def imported_modules(path: Path) -> list[str]:
    """Every module `path` imports by absolute name (`from a.b import c` gives a.b and a.b.c)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


@functools.cache
def every_import() -> list[tuple[Path, str]]:
    """(file, module) for every absolute import in the repository: parsed once for both checks."""
    return [(path, name) for path in python_files() for name in imported_modules(path)]


def test_no_module_imports_a_conftest():
    offenders = [
        f"{path.relative_to(REPO)} imports {name}" for path, name in every_import() if name.split(".")[-1] == "conftest"
    ]

    assert offenders == []


def test_no_module_imports_a_test_module():
    offenders = [
        f"{path.relative_to(REPO)} imports {name}"
        for path, name in every_import()
        if name.split(".")[-1].startswith("test_")
    ]

    assert offenders == []
