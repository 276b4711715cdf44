"""The app release as Terraform makes it, evaluated from terraform/ and rendered with the
chart: what Terraform passes is what the chart is checked with."""

from __future__ import annotations

from tests.deploy.chart import CHART_DIR, DEFAULT_VALUES_FILE, Manifest, find
from tests.deploy.terraform import resolve, terraform_module
from tests.deploy.terraform_values import (
    production_values,
)


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


def test_the_production_example_reaches_the_servers_terraform_creates(production_manifests: list[Manifest]) -> None:
    # given the servers terraform/ declares
    module = terraform_module()
    (cluster,) = module.manifests("Cluster").values()
    namespace = resolve(cluster["manifest"]["metadata"]["namespace"], module)
    postgres_services = {f"{resolve(cluster['manifest']['metadata']['name'], module)}-rw.{namespace}.svc"}
    poolers = {name: body["manifest"] for name, body in module.manifests("Pooler").items()}
    postgres_services |= {
        f"{resolve(pooler['metadata']['name'], module)}.{namespace}.svc" for pooler in poolers.values()
    }
    secrets = {
        resolve(body["metadata"][0]["name"], module) for body in module.resources["kubernetes_secret_v1"].values()
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
