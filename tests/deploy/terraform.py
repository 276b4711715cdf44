"""terraform/ read offline with python-hcl2 (no providers, no cluster): its blocks by
kind, and a resolver that follows references in an argument (var.* to their defaults,
local.*, each.*, a resource's own arguments), fills string templates and tostring(),
and gives up on other function calls. tests/deploy/terraform_values.py evaluates whole
expressions (functions, operators, for) on top of it.

    from tests.deploy.terraform import terraform_module, resolve, app_release
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
CHART_DIR = REPO / "charts" / "order-service"

# Strings keep no quotes, blocks carry no markers, heredocs become plain strings;
# an expression stays as "${...}".
_HCL_OPTIONS = SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True, preserve_heredocs=False
)


# --- Reading the module ------------------------------------------------------------


@dataclass
class Module:
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    terraform_blocks: list[dict[str, Any]] = field(default_factory=list)
    # The folder the .tf files came from (path.module), and variable values given to
    # the module (a .tfvars file), which win over the defaults.
    directory: Path = TERRAFORM
    tfvars: dict[str, Any] = field(default_factory=dict)

    def variable(self, name: str) -> Any:
        """var.<name>: its tfvars value, else its default; Unresolved when it has neither."""
        if name in self.tfvars:
            return self.tfvars[name]
        variable = self.variables[name]
        if "default" not in variable:
            raise Unresolved(f"var.{name} has no default")
        return variable["default"]

    def manifests(self, kind: str) -> dict[str, dict[str, Any]]:
        """kubernetes_manifest resources of one kind, by resource name."""
        return {
            name: body
            for name, body in self.resources.get("kubernetes_manifest", {}).items()
            if body["manifest"].get("kind") == kind
        }


def hcl_load(path: Path) -> dict[str, Any]:
    return hcl2.loads(path.read_text(), serialization_options=_HCL_OPTIONS)


@cache
def terraform_module(directory: Path = TERRAFORM) -> Module:
    module = Module(directory=directory)
    files = sorted(directory.glob("*.tf"))
    assert files, f"no .tf files in {directory}"
    for path in files:
        document = hcl_load(path)
        for block in document.get("variable", []):
            module.variables.update(block)
        for block in document.get("locals", []):
            module.locals.update(block)
        for block in document.get("output", []):
            module.outputs.update(block)
        for block in document.get("resource", []):
            for resource_type, by_name in block.items():
                module.resources.setdefault(resource_type, {}).update(by_name)
        module.terraform_blocks.extend(document.get("terraform", []))
    return module


# --- A resolver for references ----------------------------------------------------------


class Unresolved(Exception):
    """An expression the resolver does not evaluate (a function call, an operator)."""


_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
_REFERENCE = re.compile(r'[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\]|\["[^"]*"\])*')
_STEP = re.compile(r'\.([A-Za-z_][\w-]*)|\[(\d+)\]|\["([^"]*)"\]')

Each = tuple[str, Any] | None


def pure_reference(value: Any) -> str | None:
    """ "var.x.y" when value is exactly "${var.x.y}", else None."""
    if isinstance(value, str):
        match = _INTERPOLATION.fullmatch(value)
        if match and _REFERENCE.fullmatch(match.group(1).strip()):
            return match.group(1).strip()
    return None


def _lookup(reference: str, module: Module, each: Each) -> Any:
    head_match = re.match(r"[A-Za-z_][\w-]*", reference)
    assert head_match
    head = head_match.group(0)
    steps: list[str | int] = [
        name or (int(index) if index else key) for name, index, key in _STEP.findall(reference[head_match.end() :])
    ]
    node: Any
    if head == "var":
        node, steps = module.variable(str(steps[0])), steps[1:]
    elif head == "local":
        node, steps = module.locals[str(steps[0])], steps[1:]
    elif head == "each":
        if each is None:
            raise Unresolved(f"{reference} outside for_each")
        if steps[0] == "key":
            return each[0]
        node, steps = each[1], steps[1:]
    elif head == "path" and steps == ["module"]:
        return str(module.directory)
    elif head in module.resources:
        node, steps = module.resources[head][str(steps[0])], steps[1:]
    else:
        raise Unresolved(reference)
    for step in steps:
        node = resolve(node, module, each)
        node = node[step]
    return node


def template_text(value: Any) -> str:
    """A value as a string template or tostring() writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    raise Unresolved(f"{value!r} inside a string template")


def resolve(value: Any, module: Module, each: Each = None) -> Any:
    """The value of an argument: literals as they are, references followed (variables at
    their defaults), string templates filled in. Maps and lists come back as written:
    resolve their members when needed. Raises Unresolved for anything else."""
    if not isinstance(value, str):
        return value
    reference = pure_reference(value)
    if reference is not None:
        return resolve(_lookup(reference, module, each), module, each)
    converted = re.fullmatch(r"\$\{tostring\((.*)\)\}", value)
    if converted and _REFERENCE.fullmatch(converted.group(1).strip()):
        return template_text(resolve("${" + converted.group(1).strip() + "}", module, each))

    def fill(match: re.Match[str]) -> str:
        inner = match.group(1).strip()
        if not _REFERENCE.fullmatch(inner):
            raise Unresolved(value)
        return template_text(resolve(_lookup(inner, module, each), module, each))

    filled = _INTERPOLATION.sub(fill, value)
    if "${" in filled:
        raise Unresolved(value)
    return filled


def origin(value: Any, module: Module, each: Each = None) -> Any:
    """Follow local.* and each.* references to the expression they stand for, e.g. both
    "${each.value.name}" (in a topic) and "${var.kafka_topics.x}" give the latter."""
    reference = pure_reference(value)
    while reference is not None and reference.split(".")[0] in ("local", "each"):
        value = _lookup(reference, module, each)
        reference = pure_reference(value)
    return value


def resolved_or_none(value: Any, module: Module, each: Each = None) -> Any:
    try:
        return resolve(value, module, each)
    except Unresolved:
        return None


def for_each_items(body: dict[str, Any], module: Module) -> Iterator[Each]:
    """(each.key, each.value) per instance of a resource, or None without for_each."""
    if "for_each" not in body:
        yield None
        return
    items = resolve(body["for_each"], module)
    assert isinstance(items, dict), f"for_each must resolve to a map, got {body['for_each']!r}"
    yield from items.items()


# --- What the module gives the app -------------------------------------------------------


@dataclass(frozen=True)
class AppRelease:
    body: dict[str, Any]
    values: dict[str, Any]  # the chart values Terraform sets (before var.app_values_overrides)
    config: dict[str, Any]  # their `config`: env name -> expression
    secret: dict[str, Any]  # the kubernetes_secret resource the chart uses as existingSecret


def local_in(expression: Any, function: str) -> str:
    match = re.fullmatch(rf"\$\{{{function}\(local\.(\w+)\b.*\}}", str(expression), re.S)
    assert match, f"expected {function}(local.<name>, ...), got {expression!r}"
    return match.group(1)


@cache
def app_release(directory: Path = TERRAFORM) -> AppRelease:
    """The helm_release of ../charts/order-service in the module at `directory`."""
    module = terraform_module(directory)
    chart = (directory.parent / CHART_DIR.relative_to(REPO)).resolve()
    releases = [
        body
        for body in module.resources.get("helm_release", {}).values()
        if Path(str(resolved_or_none(body["chart"], module))).resolve() == chart
    ]
    assert len(releases) == 1, "exactly one helm_release of ../charts/order-service"
    body = releases[0]
    values = module.locals[local_in(body["values"][0], "yamlencode")]
    config = values["config"]
    if not isinstance(config, dict):  # merge(local.app_config, var.app_extra_config): the overrides come last
        config = module.locals[local_in(config, "merge")]
    secret_reference = pure_reference(values["secret"]["existingSecret"])
    match = re.fullmatch(r"(kubernetes_secret(?:_v1)?)\.(\w+)\.metadata\[0\]\.name", secret_reference or "")
    assert match, f"secret.existingSecret must name a kubernetes_secret of this module, got {values['secret']!r}"
    secret = module.resources[match.group(1)][match.group(2)]
    return AppRelease(body=body, values=values, config=config, secret=secret)
