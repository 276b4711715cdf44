"""Ask Terraform itself, offline: `terraform console` in a folder holding only .tf files
that need no providers (variables, locals, functions), so no `terraform init`.

Python evaluates the module everywhere (expressions.py); this is for what only Terraform
knows (variable types with their optional() defaults, validation blocks) and to check
the evaluator against the real thing. There may be no terraform binary (CI images,
laptops): callers check `TERRAFORM_BINARY` and skip, as tests/deploy does with
`needs_terraform`.

    terraform_locals(["app_ingress_from"], var_file=EXAMPLE_TFVARS)
    console(folder_with_chart_tf, "local.app_chart_digest")
    variable_errors(tfvars)    # "" when the validations accept these values
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from devstack.deploy.terraform import TERRAFORM, hcl_load, terraform_module

TERRAFORM_BINARY = shutil.which("terraform")
_LOCAL_REFERENCE = re.compile(r"\blocal\.(\w+)")


def console(folder: Path, expression: str, var_file: Path | None = None) -> str:
    """What `terraform console` prints for the expression in that folder.

    Raises RuntimeError with Terraform's message when it fails (a validation refusing
    the tfvars, an expression that reads a resource)."""
    if TERRAFORM_BINARY is None:
        raise RuntimeError("no terraform binary on PATH")
    command = [TERRAFORM_BINARY, "console", "-no-color", *([f"-var-file={var_file}"] if var_file else [])]
    result = subprocess.run(
        command,
        cwd=folder,
        input=expression + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # No CLI configuration, no checkpoint call home: nothing here needs the network.
        env={**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull},
    )
    # A variable validation that fails is printed as an error, yet console (1.11) goes on
    # to print the expression's value and exits 0: the error text is what tells.
    if result.returncode != 0 or "Error:" in result.stderr:
        raise RuntimeError(f"terraform console failed:\n{result.stderr}")
    return result.stdout.strip()


def _hcl(value: Any) -> str:
    """A value as loaded (strings unquoted, expressions as "${...}") written back as HCL source."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}") and value.count("${") == 1:
        return value[2:-1]
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key)} = {_hcl(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(item) for item in value) + "]"
    return json.dumps(value)  # strings (templates stay templates), numbers, true/false/null


def _variable_files(folder: str) -> None:
    """Copy every file of terraform/ that declares only variables (variables.tf,
    variables_backups.tf): their validations may refer to each other."""
    for path in sorted(TERRAFORM.glob("*.tf")):
        if set(hcl_load(path)) == {"variable"}:
            shutil.copy(path, folder)


def variable_errors(var_file: Path) -> str:
    """What Terraform says when it refuses these variable values ("" when it accepts them):
    the module's variable validations, checked as `terraform plan` checks them."""
    with tempfile.TemporaryDirectory(prefix="terraform-variables-") as folder:
        _variable_files(folder)
        try:
            console(Path(folder), "true", var_file)
        except RuntimeError as refused:
            return str(refused)
    return ""


def terraform_locals(names: Iterable[str], var_file: Path | None = None) -> dict[str, Any]:
    """{name: value} of these locals of terraform/ as Terraform evaluates them: the module's
    variables (types, defaults, validations) and the locals named (and those they use),
    copied into a folder of their own."""
    names = list(names)
    written = terraform_module(TERRAFORM).locals
    wanted, needed = list(names), {}
    while wanted:
        name = wanted.pop()
        if name not in needed:
            needed[name] = _hcl(written[name])
            wanted += _LOCAL_REFERENCE.findall(needed[name])
    with tempfile.TemporaryDirectory(prefix="terraform-locals-") as folder:
        _variable_files(folder)
        body = "\n".join(f"  {name} = {source}" for name, source in needed.items())
        Path(folder, "locals.tf").write_text(f"locals {{\n{body}\n}}\n")
        query = "jsonencode({" + ", ".join(f"{name} = local.{name}" for name in names) + "})"
        return dict(json.loads(json.loads(console(Path(folder), query, var_file))))
