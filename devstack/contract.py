"""The event contract's dev tools (not in the image): compatibility check, docs tables, release copy.

    python -m devstack.contract check     current schemas vs docs/contract/released/ (make contract-check)
    python -m devstack.contract docs      rewrite docs/events.md's generated field tables (make contract-docs)
    python -m devstack.contract release   copy the current schemas to docs/contract/released/ (at a release)

Breaking (for the services that read our events, or the user service whose
events we read): an event or field removed, a field retyped (type, format or
const changed), a required field added, an enum narrowed, additionalProperties
tightened. Each is reported with the event and the field. They are allowed only
when the event's envelope `version` const is raised and docs/events.md has a
migration note for it: a heading `### <event type> <old> → <new>`.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CURRENT = REPO / "orders_project" / "contract" / "schemas"
RELEASED = REPO / "docs" / "contract" / "released"
DOCS = REPO / "docs" / "events.md"
BEGIN = "<!-- BEGIN generated from orders_project/contract/schemas by `make contract-docs`: do not edit -->"
END = "<!-- END generated -->"
EVENT_ORDER = (
    "order.created",
    "order.confirmed",
    "order.shipped",
    "order.cancelled",
    "order.voided",
    "user.created",
    "user.updated",
    "user.deleted",
)


def load(folder: Path) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


# --- compatibility ---------------------------------------------------------


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type")
    if kind is None:
        return set()
    return {kind} if isinstance(kind, str) else set(kind)


def _allowed(schema: dict[str, Any]) -> list[Any] | None:
    """The values an enum or const allows; None when the field has neither."""
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        return list(schema["enum"])
    return None


def _compare(old: dict[str, Any], new: dict[str, Any], path: str, out: list[str]) -> None:
    field = path or "(root)"
    if _types(old) != _types(new) and (_types(old) or _types(new)):
        out.append(f"{field}: retyped {sorted(_types(old)) or 'any'} -> {sorted(_types(new)) or 'any'}")
    if old.get("format") != new.get("format"):
        out.append(f"{field}: format changed {old.get('format')!r} -> {new.get('format')!r}")
    old_values, new_values = _allowed(old), _allowed(new)
    if new_values is not None and old_values is None:
        out.append(f"{field}: enum added {new_values} (was any value)")
    elif old_values is not None and new_values is not None:
        removed = [value for value in old_values if value not in new_values]
        if removed:
            out.append(f"{field}: enum narrowed, {removed} removed")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            out.append(f"{_join(path, name)}: removed")
        else:
            _compare(old_props[name], new_props[name], _join(path, name), out)
    for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        out.append(f"{_join(path, name)}: now required")
    old_extra, new_extra = old.get("additionalProperties", True), new.get("additionalProperties", True)
    if old_extra is not False and new_extra is False and ("properties" in old or "properties" in new):
        out.append(f"{field}: additionalProperties tightened (unknown fields now refused)")
    elif isinstance(old_extra, dict) and isinstance(new_extra, dict):
        _compare(old_extra, new_extra, f"{path}{{*}}" if path else "{*}", out)
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        _compare(old["items"], new["items"], f"{path}[]", out)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _version(schema: dict[str, Any]) -> str | None:
    version = schema.get("properties", {}).get("version", {})
    return str(version["const"]) if "const" in version else None


def migration_noted(docs: str, event: str, old: str, new: str) -> bool:
    """docs/events.md has a heading `### <event> <old> → <new>` (an ASCII -> works too)."""
    heading = rf"^###\s+`?{re.escape(event)}`?\s+{re.escape(old)}\s*(→|->)\s*{re.escape(new)}\s*$"
    return re.search(heading, docs, flags=re.MULTILINE) is not None


def check(released: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]], docs: str) -> list[str]:
    """Every breaking change from `released` to `current` not covered by a version raise
    with a migration note, as "<schema>: <field>: <what>"."""
    problems: list[str] = []
    for name, old in sorted(released.items()):
        new = current.get(name)
        if new is None:
            problems.append(f"{name}: removed (consumers still read it)")
            continue
        found: list[str] = []
        _compare(old, new, "", found)
        old_version, new_version = _version(old), _version(new)
        if old_version != new_version and old_version is not None and new_version is not None:
            if migration_noted(docs, name, old_version, new_version):
                continue  # a new major version: breaking is allowed, and the docs say how to move
            problems.append(
                f"{name}: version {old_version} -> {new_version} needs a migration note in docs/events.md "
                f"(a heading '### {name} {old_version} → {new_version}')"
            )
            found = [problem for problem in found if not problem.startswith("version:")]
        problems.extend(f"{name}: {problem}" for problem in found)
    return problems


# --- docs ------------------------------------------------------------------


def _printable(text: str) -> str:
    return "".join(char if char.isprintable() else f"\\u{ord(char):04x}" for char in text)


def _type_text(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    kind = schema.get("type")
    text = kind if isinstance(kind, str) else " or ".join(kind) if kind else "any"
    details = []
    if "format" in schema:
        details.append(schema["format"])
    elif "pattern" in schema:
        details.append(f"`{_printable(schema['pattern'])}`")
    if "minLength" in schema or "maxLength" in schema:
        details.append(f"{schema.get('minLength', 0)}-{schema.get('maxLength', '∞')} chars")
    if "minimum" in schema:
        details.append(f"≥ {schema['minimum']}")
    return text + (f" ({', '.join(details)})" if details else "")


def _rows(schema: dict[str, Any], path: str, required: bool, out: list[str]) -> None:
    description = _printable(schema.get("description", "")).replace("|", "\\|")
    kind = _type_text(schema).replace("|", "\\|")
    out.append(f"| `{path}` | {kind} | {'yes' if required else 'no'} | {description} |")
    for name, child in schema.get("properties", {}).items():
        _rows(child, f"{path}.{name}", name in schema.get("required", []), out)
    if isinstance(schema.get("items"), dict):
        item = schema["items"]
        for name, child in item.get("properties", {}).items():
            _rows(child, f"{path}[].{name}", name in item.get("required", []), out)


def render(current: dict[str, dict[str, Any]]) -> str:
    """The generated part of docs/events.md: one field table per event, and the header tables."""
    lines = [BEGIN, ""]
    # Known events first, in the docs' order (an older release may lack some), then any others.
    for name in [*(n for n in EVENT_ORDER if n in current), *sorted(set(current) - set(EVENT_ORDER))]:
        schema = current[name]
        version = _version(schema)
        title = f"`{name}`" + (f" (version {version})" if version else "")
        extra = "Other fields may appear." if schema.get("additionalProperties", True) else "No other fields."
        lines += [f"#### {title}", "", f"{schema.get('description', '')} {extra}", ""]
        lines += ["| field | type | required | description |", "|---|---|---|---|"]
        required = schema.get("required", [])
        for field, child in schema.get("properties", {}).items():
            _rows(child, field, field in required, lines)
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def docs_with_tables(docs: str, current: dict[str, dict[str, Any]]) -> str:
    if BEGIN not in docs or END not in docs:
        raise ValueError(f"docs/events.md lacks the generated-region markers ({BEGIN!r} ... {END!r})")
    head, rest = docs.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + render(current) + tail


# --- commands ---------------------------------------------------------------


def run_check(*, released: Path = RELEASED, current: Path = CURRENT, docs_path: Path = DOCS) -> int:
    docs = docs_path.read_text()
    problems = check(load(released), load(current), docs)
    schemas = load(current)
    if docs_with_tables(docs, schemas) != docs:
        problems.append("docs/events.md: field tables differ from the schemas; run `make contract-docs`")
    for problem in problems:
        print(f"contract-check: BREAKING {problem}", file=sys.stderr)
    if problems:
        print(f"contract-check: {len(problems)} problem(s) against {released.relative_to(REPO)}", file=sys.stderr)
        return 1
    print(f"contract-check: {len(schemas)} schemas compatible with {released.relative_to(REPO)}; docs in sync")
    return 0


def run_docs(*, docs_path: Path = DOCS) -> int:
    docs = docs_path.read_text()
    updated = docs_with_tables(docs, load(CURRENT))
    if updated != docs:
        docs_path.write_text(updated)
        print(f"contract-docs: rewrote the field tables in {docs_path}")
    else:
        print("contract-docs: docs/events.md already matches the schemas")
    return 0


def run_release() -> int:
    RELEASED.mkdir(parents=True, exist_ok=True)
    for old in RELEASED.glob("*.json"):
        old.unlink()
    for path in CURRENT.glob("*.json"):
        shutil.copy2(path, RELEASED / path.name)
    print(f"contract-release: copied {len(list(CURRENT.glob('*.json')))} schemas to {RELEASED.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    commands = {"check": run_check, "docs": run_docs, "release": run_release}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python -m devstack.contract {{{','.join(commands)}}}")
    sys.exit(commands[sys.argv[1]]())
