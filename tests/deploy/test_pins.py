"""What the deployment is pinned to: one Kubernetes floor for the whole stack, charts
and providers from where they are published, a current Python base image."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2.utils import SerializationOptions

from devstack.deploy.chart import CHART_DIR, KUBERNETES_VERSIONS

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
# Strimzi 1.2 supports Kubernetes 1.30 and newer (its release notes); the chart alone
# would run on 1.27. The stack's floor is the higher one.
KUBERNETES_FLOOR = "1.30"
# hashicorp/helm releases of the 3.x line (releases.hashicorp.com/terraform-provider-helm).
PUBLISHED_HELM_PROVIDER = ("3.0.0", "3.0.1", "3.0.2", "3.1.0", "3.1.1")
# The newest python:3.13.N-slim-bookworm seen published (Docker Hub) when the pin was last raised.
PYTHON_313_PATCH_FLOOR = 16
_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def _terraform(name: str) -> dict[str, Any]:
    return hcl2.loads((TERRAFORM / name).read_text(), serialization_options=_OPTIONS)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def satisfies(version: str, constraint: str) -> bool:
    """Terraform's version constraints, the forms used here: "~> X.Y[.Z]", "= X.Y.Z", ">= X.Y"."""
    for part in constraint.split(","):
        operator, wanted = re.fullmatch(r"\s*(~>|>=|<=|=|>|<)?\s*([\d.]+)\s*", part).groups()  # type: ignore[union-attr]
        have, want = _version(version), _version(wanted)
        if operator == "~>":
            # ~> 3.1.1: >= 3.1.1 and < 3.2; ~> 3.1: >= 3.1 and < 4
            prefix = want[:-1]
            if have < want or have[: len(prefix)] != prefix:
                return False
        elif not {
            None: have == want,
            "=": have == want,
            ">=": have >= want,
            "<=": have <= want,
            ">": have > want,
            "<": have < want,
        }[operator]:
            return False
    return True


def test_satisfies_reads_pessimistic_constraints_as_terraform_does() -> None:
    assert satisfies("3.1.1", "~> 3.1.1") and satisfies("3.1.9", "~> 3.1.1")
    assert not satisfies("3.2.0", "~> 3.1.1") and not satisfies("3.1.0", "~> 3.1.1")
    assert satisfies("3.9.0", "~> 3.1") and not satisfies("4.0.0", "~> 3.1")
    assert not any(satisfies(version, "~> 3.3") for version in PUBLISHED_HELM_PROVIDER)


def test_one_kubernetes_floor_for_the_chart_the_operators_and_the_docs() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={KUBERNETES_FLOOR}.0-0"
    # the chart is validated against the floor it states
    assert KUBERNETES_VERSIONS[0] == KUBERNETES_FLOOR
    for doc in (REPO / "docs" / "deploy.md", TERRAFORM / "README.md"):
        assert f"Kubernetes {KUBERNETES_FLOOR} or newer" in doc.read_text(), doc


def test_strimzi_chart_comes_from_its_oci_registry() -> None:
    releases: dict[str, Any] = {}
    for block in _terraform("kafka.tf")["resource"]:
        releases.update(block.get("helm_release", {}))
    strimzi = releases["strimzi"]
    assert strimzi["repository"] == "oci://quay.io/strimzi-helm"
    assert strimzi["chart"] == "strimzi-kafka-operator"


def test_each_provider_constraint_admits_a_published_release() -> None:
    (block,) = _terraform("versions.tf")["terraform"]
    providers: dict[str, Any] = {}
    for required in block["required_providers"]:
        providers.update(required)
    constraint = providers["helm"]["version"]
    assert [version for version in PUBLISHED_HELM_PROVIDER if satisfies(version, constraint)], constraint


def test_a_committed_lock_file_pins_providers_the_constraints_allow() -> None:
    """terraform init cannot download providers here, so the lock file is not committed yet;
    once it is, every provider it pins must satisfy versions.tf."""
    lock = TERRAFORM / ".terraform.lock.hcl"
    if not lock.exists():
        assert ".terraform.lock.hcl" in (TERRAFORM / "README.md").read_text()
        return
    (block,) = _terraform("versions.tf")["terraform"]
    constraints = {name: spec["version"] for required in block["required_providers"] for name, spec in required.items()}
    for entry in hcl2.loads(lock.read_text(), serialization_options=_OPTIONS).get("provider", []):
        for address, pinned in entry.items():
            name = address.rsplit("/", 1)[-1]
            assert satisfies(pinned["version"], constraints[name]), (address, pinned["version"])


def test_base_image_is_one_current_313_patch_release_in_both_stages() -> None:
    bases = re.findall(r"^FROM (\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert len(bases) == 2 and len(set(bases)) == 1, bases
    match = re.fullmatch(r"python:3\.13\.(\d+)-slim-bookworm", bases[0])
    assert match, bases[0]
    assert int(match.group(1)) >= PYTHON_313_PATCH_FLOOR
