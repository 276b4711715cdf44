"""terraform/ read offline with python-hcl2 (no providers, no cluster): its blocks by
kind, and which expression a `local.*` or `each.*` reference stands for.

Evaluating an expression is expressions.py's job, the chart values the module passes
terraform_values.py's, and what only Terraform itself can tell (type conversions,
variable validations) terraform_console.py's.

    from devstack.deploy.terraform import terraform_module, module_with_tfvars, origin
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
CHART_DIR = REPO / "charts" / "order-service"
EXAMPLE_TFVARS = TERRAFORM / "terraform.tfvars.example"

# Strings keep no quotes, blocks carry no markers, heredocs become plain strings;
# an expression stays as "${...}".
_HCL_OPTIONS = SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True, preserve_heredocs=False
)


class Unresolved(Exception):
    """An expression that cannot be evaluated offline: a variable with no value, a function
    the evaluator does not know, an attribute known only after apply."""


# (each.key, each.value as written) of one instance of a resource with for_each, or None.
Each = tuple[str, Any] | None


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
        """var.<name> as written: its tfvars value, else its default; Unresolved when it has neither."""
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

    def only_manifest(self, kind: str) -> dict[str, Any]:
        """The manifest of the one kubernetes_manifest of this kind (as written)."""
        found = self.manifests(kind)
        assert len(found) == 1, f"expected one {kind} manifest, found {sorted(found)}"
        return dict(next(iter(found.values()))["manifest"])


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


def module_with_tfvars(path: Path, module: Module | None = None) -> Module:
    """The module as `terraform plan -var-file=PATH` sees its variables."""
    return dataclasses.replace(module or terraform_module(), tfvars=hcl_load(path))


# --- References, followed without evaluating -----------------------------------------------

_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
_REFERENCE = re.compile(r'[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\]|\["[^"]*"\])*')
_STEP = re.compile(r'\.([A-Za-z_][\w-]*)|\[(\d+)\]|\["([^"]*)"\]')


def pure_reference(value: Any) -> str | None:
    """ "var.x.y" when value is exactly "${var.x.y}", else None."""
    if isinstance(value, str):
        match = _INTERPOLATION.fullmatch(value)
        if match and _REFERENCE.fullmatch(match.group(1).strip()):
            return match.group(1).strip()
    return None


def _follow(reference: str, module: Module, each: Each) -> Any:
    """What local.<path> or each.<path> stands for, as written."""
    head, _, rest = reference.partition(".")
    steps: list[str | int] = [name or (int(index) if index else key) for name, index, key in _STEP.findall("." + rest)]
    node: Any
    if head == "local":
        node = module.locals[str(steps[0])]
    elif each is not None and steps[0] == "key":
        return each[0]
    elif each is not None:
        node = each[1]
    else:
        raise ValueError(f"{reference} outside for_each")
    for step in steps[1:]:
        node = node[step]
    return node


def origin(value: Any, module: Module, each: Each = None) -> Any:
    """Follow local.* and each.* references to the expression they stand for, e.g. both
    "${each.value.name}" (in a topic) and "${var.kafka_topics.x}" give the latter."""
    reference = pure_reference(value)
    while reference is not None and reference.split(".")[0] in ("local", "each"):
        value = _follow(reference, module, each)
        reference = pure_reference(value)
    return value
