"""README's Layout names every top-level folder, every folder of tests/ and every page of docs/."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1]


def _tracked_folders() -> set[str]:
    """Top-level folders and folders of tests/ that hold tracked files (not hidden ones)."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    folders = set()
    for file in files:
        parts = file.split("/")
        if len(parts) > 1 and not parts[0].startswith("."):
            folders.add(parts[0] + "/")
        if len(parts) > 2 and parts[0] == "tests":
            folders.add(f"tests/{parts[1]}/")
    return folders - {"tests/"}


def test_layout_names_every_folder() -> None:
    block = _layout_block()
    named = set(re.findall(r"^([\w./-]+/)", block, flags=re.M))

    missing = sorted(folder for folder in _tracked_folders() if not any(n.startswith(folder) for n in named))

    assert missing == []


def test_layout_names_every_doc() -> None:
    block = _layout_block()

    missing = sorted(page.name for page in (ROOT / "docs").glob("*.md") if page.name not in block)

    assert missing == []
