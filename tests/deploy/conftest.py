"""Rendered chart manifests shared by the chart tests."""

import pytest

from devstack.deploy.chart import DEFAULT_VALUES_FILE, Manifest, chart_render, render
from devstack.deploy.terraform_values import production_values


@pytest.fixture(scope="session")
def default_manifests() -> list[Manifest]:
    """The chart's defaults plus ci/default-values.yaml (the least a deployer sets)."""
    return chart_render([DEFAULT_VALUES_FILE])


@pytest.fixture(scope="session")
def production_manifests() -> list[Manifest]:
    """What Terraform passes with terraform.tfvars.example: ingress, HPA, NetworkPolicy,
    monitoring, the Secret Terraform makes."""
    return render(production_values())
