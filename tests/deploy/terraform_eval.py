"""Evaluate some of terraform/'s locals with Terraform itself, offline.

`terraform console` needs no providers for a module made only of variables and
locals, so the expressions python-hcl2 reads as strings (conditionals, `for`)
get Terraform's real semantics: the variables of terraform/variables.tf (with
their types, defaults and validations) plus the named locals, copied into a
temporary module, evaluated with an optional tfvars file.

    from tests.deploy.terraform_eval import terraform_locals
    terraform_locals(["app_ingress_from"], var_file=TERRAFORM / "terraform.tfvars.example")
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

import hcl2
from hcl2.utils import SerializationOptions

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
# Expressions stay as "${...}" with their own quoting, literals become Python values.
_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, preserve_heredocs=False)
_LOCAL_REFERENCE = re.compile(r"\blocal\.(\w+)")


def module_locals() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        for block in hcl2.loads(path.read_text(), serialization_options=_OPTIONS).get("locals", []):
            found.update(block)
    return found


def _hcl(value: Any) -> str:
    """A local's value as HCL source: an expression as written, a literal through jsondecode."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    if isinstance(value, str):
        return json.dumps(value.strip('"'))
    return f"jsondecode({json.dumps(json.dumps(value))})"


def terraform_locals(names: Iterable[str], var_file: Path | None = None) -> dict[str, Any]:
    """{name: value} of these locals (and the locals they use), as Terraform evaluates them.

    Raises RuntimeError with Terraform's message when evaluation fails (a validation
    refusing the tfvars, a local that reads a resource)."""
    terraform = shutil.which("terraform")
    if terraform is None:
        raise RuntimeError("no terraform binary on PATH")
    found_locals = module_locals()
    wanted = list(names)
    needed: dict[str, str] = {}
    while wanted:
        name = wanted.pop()
        if name in needed:
            continue
        needed[name] = _hcl(found_locals[name])
        wanted += _LOCAL_REFERENCE.findall(needed[name])
    with tempfile.TemporaryDirectory(prefix="terraform-locals-") as folder:
        shutil.copy(TERRAFORM / "variables.tf", folder)
        body = "\n".join(f"  {name} = {source}" for name, source in needed.items())
        Path(folder, "locals.tf").write_text(f"locals {{\n{body}\n}}\n")
        query = "jsonencode({" + ", ".join(f"{name} = local.{name}" for name in names) + "})\n"
        command = [terraform, "console"]
        if var_file is not None:
            command.append(f"-var-file={var_file}")
        result = subprocess.run(
            command,
            cwd=folder,
            input=query,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            # No CLI configuration, no checkpoint call home: nothing here needs the network.
            env={**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull},
        )
    if result.returncode != 0:
        raise RuntimeError(f"terraform console failed:\n{result.stderr}")
    return dict(json.loads(json.loads(result.stdout)))
