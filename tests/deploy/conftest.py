"""Rendered chart manifests shared by the chart tests."""

import pytest

from tests.deploy.chart import DEFAULT_VALUES_FILE, PRODUCTION_VALUES_FILE, Manifest, chart_render


@pytest.fixture(scope="session")
def default_manifests() -> list[Manifest]:
    """The chart's defaults plus ci/default-values.yaml (the least a deployer sets)."""
    return chart_render([DEFAULT_VALUES_FILE])


@pytest.fixture(scope="session")
def production_manifests() -> list[Manifest]:
    """ci/production-values.yaml: ingress, HPA, NetworkPolicy, monitoring, an existing Secret."""
    return chart_render([PRODUCTION_VALUES_FILE])
