"""The app release as Terraform makes it, evaluated from terraform/ and rendered with the
chart: what Terraform passes is what the chart is checked with, a rotated secret rolls
the pods, and a chart edit changes the release."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from devstack.deploy.chart import CHART_DIR, DEFAULT_VALUES_FILE, Manifest, chart_render, find, render
from devstack.deploy.expressions import evaluate
from devstack.deploy.terraform import EXAMPLE_TFVARS, REPO, TERRAFORM, module_with_tfvars, terraform_module
from devstack.deploy.terraform_console import console
from devstack.deploy.terraform_values import (
    example_known,
    production_values,
    release_argument,
    release_values,
)
from tests.support.terraform import needs_terraform


def pod_annotations(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    return {
        doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]["annotations"]
        for doc in find(manifests, "Deployment")
    }


def config_map(manifests: list[Manifest]) -> dict[str, str]:
    (found,) = find(manifests, "ConfigMap", "order-service")
    return dict(found["data"])


# --- The production example is Terraform's -------------------------------------------------


def test_no_hand_written_production_values_beside_terraforms() -> None:
    assert sorted(path.name for path in (CHART_DIR / "ci").iterdir()) == [DEFAULT_VALUES_FILE.name]
    # nor do the docs send a reader to one
    for doc in (REPO / "docs" / "deploy.md", TERRAFORM / "README.md", REPO / "charts" / "README.md"):
        assert "ci/production-values.yaml" not in doc.read_text(), doc


def test_the_production_example_reaches_the_servers_terraform_creates(production_manifests: list[Manifest]) -> None:
    # given the servers terraform/ declares
    module = terraform_module()
    (cluster,) = module.manifests("Cluster").values()
    namespace = evaluate(cluster["manifest"]["metadata"]["namespace"], module)
    postgres_services = {f"{evaluate(cluster['manifest']['metadata']['name'], module)}-rw.{namespace}.svc"}
    poolers = {name: body["manifest"] for name, body in module.manifests("Pooler").items()}
    postgres_services |= {
        f"{evaluate(pooler['metadata']['name'], module)}.{namespace}.svc" for pooler in poolers.values()
    }
    secrets = {
        evaluate(body["metadata"][0]["name"], module) for body in module.resources["kubernetes_secret_v1"].values()
    }

    # when the chart is rendered with what Terraform passes (terraform.tfvars.example)
    config = config_map(production_manifests)
    env_from = {
        source["secretRef"]["name"]
        for workload in [*find(production_manifests, "Deployment"), *find(production_manifests, "Job")]
        for container in workload["spec"]["template"]["spec"]["containers"]
        for source in container["envFrom"]
        if "secretRef" in source
    }

    # then every process talks to a PostgreSQL Service and reads a Secret that Terraform makes
    assert config["POSTGRES_SERVER"] in postgres_services
    assert env_from == {"order-service-secrets"} and env_from <= secrets
    # no pooler, no pooler settings: docs/deploy.md "Behind a pooler" says which go where
    assert not poolers
    assert config["POSTGRES_DISABLE_SERVER_SIDE_CURSORS"] == "false"
    assert "POSTGRES_CONN_MAX_AGE" not in config


def test_the_example_overrides_reach_the_chart() -> None:
    values = production_values()

    assert values["web"]["autoscaling"]["enabled"] is True
    assert values["consumer"]["replicas"] == 3
    assert values["config"]["GUNICORN_WORKERS"] == "2"  # app_extra_config merged over app_config
    assert values["image"] == {"repository": "registry.example.com/orders/order-service", "tag": "1.4.2"}
    assert values["ingress"]["enabled"] is True and values["ingress"]["host"] == "orders.example.com"


# --- Secret rotation ----------------------------------------------------------------------


def test_a_rotated_password_in_terraforms_secret_rolls_every_deployment() -> None:
    # given the example release before and after `terraform apply -replace=random_password.postgres_app`
    module = module_with_tfvars(EXAMPLE_TFVARS)
    known = example_known(module)
    rotated = {**known, "random_password.postgres_app.result": "another-password"}

    before = pod_annotations(render(release_values(module, known)))
    same = pod_annotations(render(release_values(module, dict(known))))
    after = pod_annotations(render(release_values(module, rotated)))

    # then every Deployment's pod template changes (so Kubernetes replaces the pods), and
    # only when the data does
    assert sorted(before) == [
        "order-service-beat",
        "order-service-consumer",
        "order-service-web",
        "order-service-worker",
    ]
    assert same == before
    for name, pod in before.items():
        assert len(pod["checksum/secret"]) == 64
        assert after[name]["checksum/secret"] != pod["checksum/secret"]
        assert after[name]["checksum/config"] == pod["checksum/config"]


def test_an_existing_secrets_checksum_is_the_pod_annotation() -> None:
    def pods(checksum: str) -> dict[str, dict[str, str]]:
        return pod_annotations(
            chart_render(
                [DEFAULT_VALUES_FILE],
                {"secret.existingSecret": "made-elsewhere", "secret.existingSecretChecksum": checksum},
            )
        )

    assert {pod["checksum/secret"] for pod in pods("sha256-one").values()} == {"sha256-one"}
    assert {pod["checksum/secret"] for pod in pods("sha256-two").values()} == {"sha256-two"}


def test_the_charts_own_secret_rolls_every_deployment_when_its_data_changes() -> None:
    before = pod_annotations(chart_render([DEFAULT_VALUES_FILE]))
    after = pod_annotations(chart_render([DEFAULT_VALUES_FILE], {"secret.values.REDIS_PASSWORD": "rotated"}))

    for name, pod in before.items():
        assert after[name]["checksum/secret"] != pod["checksum/secret"]


# --- Chart changes reach the release -------------------------------------------------------


@pytest.fixture
def module_copy(tmp_path: Path) -> Path:
    """terraform/ and charts/order-service copied side by side, as in the repository."""
    shutil.copytree(TERRAFORM, tmp_path / "terraform", ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    shutil.copytree(CHART_DIR, tmp_path / CHART_DIR.relative_to(REPO))
    return tmp_path / "terraform"


def edit_a_template(terraform_dir: Path) -> None:
    template = terraform_dir.parent / CHART_DIR.relative_to(REPO) / "templates" / "web-service.yaml"
    template.write_text(template.read_text() + "# a template fix\n")


def test_a_template_change_changes_the_app_releases_plan_input(module_copy: Path) -> None:
    # The helm provider diffs only helm_release's arguments; the values stay the same.
    module = module_with_tfvars(EXAMPLE_TFVARS, terraform_module(module_copy))
    values_before = release_values(module)
    description_before = release_argument(module, "description")

    edit_a_template(module_copy)

    assert release_values(module) == values_before
    assert release_argument(module, "description") != description_before
    assert description_before.startswith("order-service chart sha256:")


def terraform_console(terraform_dir: Path, expression: str) -> str:
    """`terraform console` on the provider-free chart.tf alone (no init, no download)."""
    alone = terraform_dir.parent / "console"
    alone.mkdir(exist_ok=True)
    shutil.copy(terraform_dir / "chart.tf", alone / "chart.tf")
    # chart.tf finds the chart at ${path.module}/../charts/order-service: the same from here
    return console(alone, expression).strip('"')


@needs_terraform
def test_terraform_computes_the_same_chart_digest_and_it_follows_a_template_edit(module_copy: Path) -> None:
    module = terraform_module(module_copy)
    before = terraform_console(module_copy, "local.app_chart_digest")
    assert release_argument(module, "description") == f"order-service chart sha256:{before}"

    edit_a_template(module_copy)
    after = terraform_console(module_copy, "local.app_chart_digest")

    assert after != before
    assert release_argument(module, "description") == f"order-service chart sha256:{after}"
