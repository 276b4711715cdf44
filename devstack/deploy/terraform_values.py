"""What terraform/ gives the app: its helm_release of charts/order-service and the chart
values that release passes, as Helm receives them, evaluated (expressions.py) from the
module's own `locals` and a .tfvars file. Used by tests/deploy (the production example
the chart is rendered with) and by `make deploy-check` (devstack/deploy_check.py).

    values = release_values(module_with_tfvars(EXAMPLE_TFVARS))
    sets = example_values()    # {"default": ..., "production": ...}
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from devstack.deploy.chart import DEFAULT_VALUES_FILE, chart_values, merge_values
from devstack.deploy.expressions import Evaluator, evaluate_or_none
from devstack.deploy.terraform import (
    CHART_DIR,
    EXAMPLE_TFVARS,
    REPO,
    TERRAFORM,
    Module,
    module_with_tfvars,
    pure_reference,
    terraform_module,
)


@dataclass(frozen=True)
class AppRelease:
    body: dict[str, Any]
    values: dict[str, Any]  # the chart values Terraform sets (before var.app_values_overrides), as written
    config: dict[str, Any]  # their `config`: env name -> expression
    secret: dict[str, Any]  # the kubernetes_secret resource the chart uses as existingSecret


def local_in(expression: Any, function: str) -> str:
    """<name> in "${function(local.<name>, ...)}"."""
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
        if Path(str(evaluate_or_none(body["chart"], module))).resolve() == chart
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


def example_known(module: Module) -> dict[str, Any]:
    """Stand-ins for what only exists after apply: each random_password's result."""
    return {
        f"random_password.{name}.result": f"example-{name}-" + "x" * 50
        for name in module.resources.get("random_password", {})
    }


def release_values(module: Module, known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The user values of the app's helm_release: each entry of its `values` list
    evaluated and merged in order, as Helm merges several `-f` files."""
    evaluator = Evaluator(module, example_known(module) if known is None else known)
    merged: dict[str, Any] = {}
    for document in evaluator.value(app_release(module.directory).body["values"]):
        merged = merge_values(merged, yaml.safe_load(document) or {})
    return merged


@cache
def production_values() -> dict[str, Any]:
    """The production example: what Terraform passes with terraform.tfvars.example."""
    return release_values(module_with_tfvars(EXAMPLE_TFVARS))


def example_values() -> dict[str, dict[str, Any]]:
    """The value sets the chart is checked with, by name: "default" (the chart's defaults
    plus ci/default-values.yaml, the least a deployer adds) and "production" (Terraform's)."""
    return {"default": chart_values([DEFAULT_VALUES_FILE]), "production": copy.deepcopy(production_values())}


def release_argument(module: Module, name: str, known: Mapping[str, Any] | None = None) -> Any:
    """Another argument of the app's helm_release (e.g. description), evaluated."""
    evaluator = Evaluator(module, example_known(module) if known is None else known)
    return evaluator.value(app_release(module.directory).body[name])
