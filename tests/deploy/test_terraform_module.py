"""terraform/ as a module: providers and charts pinned, every variable and output
described, the example tfvars complete, and the files formatted."""

from __future__ import annotations

import re
import subprocess
from typing import Any

from devstack.deploy.expressions import evaluate
from devstack.deploy.terraform import TERRAFORM, hcl_load, terraform_module
from devstack.deploy.terraform_console import TERRAFORM_BINARY
from tests.support.terraform import needs_terraform


def test_providers_and_charts_are_pinned():
    blocks = terraform_module().terraform_blocks
    assert any("required_version" in block for block in blocks)
    providers: dict[str, Any] = {}
    for block in blocks:
        for required in block.get("required_providers", []):
            providers.update(required)
    assert set(providers) >= {"kubernetes", "helm", "random"}
    for name, requirement in providers.items():
        assert requirement["source"] == f"hashicorp/{name}"
        assert re.fullmatch(r"(~>\s*\d+\.\d+(\.\d+)?|=?\s*\d+\.\d+\.\d+)", requirement["version"]), (
            f"{name}: pin the version exactly or with ~>, got {requirement['version']!r}"
        )

    module = terraform_module()
    for name, body in module.resources.get("helm_release", {}).items():
        if "repository" in body:
            assert re.fullmatch(r"\d+\.\d+\.\d+", str(evaluate(body.get("version"), module))), name


def test_every_variable_has_a_type_and_a_description():
    for name, variable in terraform_module().variables.items():
        assert variable.get("type"), f"variable {name} has no type"
        assert str(variable.get("description", "")).strip(), f"variable {name} has no description"


def test_every_output_has_a_description():
    outputs = terraform_module().outputs
    assert {"namespace", "api_service_name", "kafka_bootstrap_servers", "app_secret_name"} <= set(outputs)
    for name, output in outputs.items():
        assert str(output.get("description", "")).strip(), f"output {name} has no description"


def test_the_example_tfvars_sets_the_required_variables_and_only_declared_ones():
    variables = terraform_module().variables
    example = hcl_load(TERRAFORM / "terraform.tfvars.example")
    assert set(example) <= set(variables), f"undeclared: {sorted(set(example) - set(variables))}"
    required = {name for name, variable in variables.items() if "default" not in variable}
    assert required <= set(example), f"missing required: {sorted(required - set(example))}"


@needs_terraform
def test_terraform_fmt_is_clean():
    result = subprocess.run(
        [str(TERRAFORM_BINARY), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}{result.stderr}"
