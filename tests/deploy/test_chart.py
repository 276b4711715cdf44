"""charts/order-service rendered offline: the runtime contract (commands, probes, env)
and the Kubernetes properties every pod must have. The values it refuses:
test_chart_schema.py; scaling, policies and monitoring: test_chart_production.py."""

import base64
import shlex

import pytest

from devstack.deploy.chart import (
    DEFAULT_VALUES_FILE,
    KUBERNETES_VERSIONS,
    Manifest,
    chart_render,
    chart_values,
    containers,
    find,
    lint,
    notes,
    render,
    validate_manifests,
)
from devstack.deploy.terraform_values import example_values, production_values

# The commands of docs/deploy.md's runtime contract, exactly (as a shell splits them).
CONTRACT_COMMANDS = {
    "web": shlex.split("gunicorn --config python:orders_project.gunicorn_conf orders_project.wsgi"),
    "worker": shlex.split("celery -A orders_project worker --loglevel INFO --without-mingle --without-gossip"),
    "beat": shlex.split("celery -A orders_project beat --loglevel INFO --pidfile="),
    "consumer": shlex.split("python manage.py consume_user_events"),
    "migrate": shlex.split("python manage.py migrate --noinput"),
}
HEARTBEAT_PROBE = ["python", "-I", "-S", "/app/orders_project/heartbeat_probe.py", "/tmp/heartbeat", "--max-age", "60"]
CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
# The value sets of devstack/deploy/terraform_values.py example_values: the least a deployer
# sets, and what Terraform passes with terraform.tfvars.example.
EXAMPLES = ("default", "production")
HOOK = "pre-install,pre-upgrade"
HOOK_DELETE = "before-hook-creation,hook-succeeded"


def component(manifest: Manifest) -> str:
    return str(manifest["metadata"]["labels"]["app.kubernetes.io/component"])


def workloads(manifests: list[Manifest]) -> dict[str, Manifest]:
    """Deployments and the migrate Job by component."""
    return {component(doc): doc for doc in [*find(manifests, "Deployment"), *find(manifests, "Job")]}


@pytest.mark.parametrize("values_set", EXAMPLES)
def test_lint_is_clean(values_set: str) -> None:
    assert lint(example_values()[values_set]) == []


@pytest.mark.parametrize("kube_version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values_set", EXAMPLES)
def test_manifests_are_valid_kubernetes_objects(values_set: str, kube_version: str) -> None:
    assert validate_manifests(render(example_values()[values_set]), kube_version) == []


def test_validation_is_strict_about_unknown_fields(default_manifests: list[Manifest]) -> None:
    deployment = find(default_manifests, "Deployment", "order-service-web")[0]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}

    assert validate_manifests([broken]) == [
        "Deployment/order-service-web: spec: Additional properties are not allowed ('replica' was unexpected)"
    ]


@pytest.mark.parametrize("values_set", EXAMPLES)
def test_every_process_runs_the_contract_command(values_set: str) -> None:
    found = workloads(render(example_values()[values_set]))

    assert sorted(found) == sorted(CONTRACT_COMMANDS)
    for name, workload in found.items():
        (container,) = containers(workload)
        assert container["command"] + container.get("args", []) == CONTRACT_COMMANDS[name]


def test_migrations_run_without_statement_timeout(default_manifests: list[Manifest]) -> None:
    (container,) = containers(workloads(default_manifests)["migrate"])

    assert container["env"] == [{"name": "POSTGRES_STATEMENT_TIMEOUT_MS", "value": "0"}]


@pytest.mark.parametrize("values_set", EXAMPLES)
def test_each_selector_matches_exactly_one_component(values_set: str) -> None:
    manifests = render(example_values()[values_set])
    deployments = find(manifests, "Deployment")
    pod_labels = {doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]["labels"] for doc in deployments}

    def selected(selector: dict[str, str]) -> list[str]:
        return [name for name, labels in pod_labels.items() if selector.items() <= labels.items()]

    (service,) = find(manifests, "Service")
    assert selected(service["spec"]["selector"]) == ["order-service-web"]
    for pdb in find(manifests, "PodDisruptionBudget"):
        assert selected(pdb["spec"]["selector"]["matchLabels"]) == [pdb["metadata"]["name"]]
    for deployment in find(manifests, "Deployment"):
        assert selected(deployment["spec"]["selector"]["matchLabels"]) == [deployment["metadata"]["name"]]


@pytest.mark.parametrize("values_set", EXAMPLES)
def test_every_pod_is_locked_down_with_resources_and_a_tmp_volume(values_set: str) -> None:
    for name, workload in workloads(render(example_values()[values_set])).items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["enableServiceLinks"] is False, name
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }, name
        assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}], name
        for container in containers(workload):
            assert container["securityContext"] == CONTAINER_SECURITY, name
            assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}], name
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
            assert "memory" in container["resources"]["limits"], name


def test_web_probes_follow_the_contract(default_manifests: list[Manifest]) -> None:
    (web,) = containers(workloads(default_manifests)["web"])

    assert web["ports"] == [
        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9100, "protocol": "TCP"},
    ]
    assert web["livenessProbe"]["httpGet"] == {"path": "/api/v1/health/live", "port": "http"}
    assert web["startupProbe"]["httpGet"] == {"path": "/api/v1/health/live", "port": "http"}
    # PostgreSQL alone: a Redis or Kafka outage degrades part of the API, it must not empty the Service
    assert web["readinessProbe"]["httpGet"] == {"path": "/api/v1/health/ready?checks=postgres", "port": "http"}
    assert web["readinessProbe"]["timeoutSeconds"] == 5
    # the pod's IP is an allowed host; /metrics on its own port, the workers adding up in /tmp
    assert web["env"] == [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "METRICS_PORT", "value": "9100"},
        {"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp/prometheus"},
    ]


@pytest.mark.parametrize("name", ["worker", "beat", "consumer"])
def test_background_processes_have_a_heartbeat_probe(default_manifests: list[Manifest], name: str) -> None:
    (container,) = containers(workloads(default_manifests)[name])

    # the prefork worker's pool processes add up their metrics in /tmp; beat and the consumer are one process
    multiprocess = [{"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp/prometheus"}] if name == "worker" else []
    assert container["env"] == [
        {"name": "HEARTBEAT_FILE", "value": "/tmp/heartbeat"},
        {"name": "METRICS_PORT", "value": "9100"},
        *multiprocess,
    ]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]
    assert container["livenessProbe"]["exec"] == {"command": HEARTBEAT_PROBE}
    assert container["startupProbe"]["exec"] == {"command": HEARTBEAT_PROBE}
    assert "readinessProbe" not in container


def test_web_drains_within_the_grace_period(default_manifests: list[Manifest]) -> None:
    web = workloads(default_manifests)["web"]["spec"]["template"]["spec"]
    config = find(default_manifests, "ConfigMap", "order-service")[0]["data"]

    assert web["terminationGracePeriodSeconds"] == 30
    assert web["containers"][0]["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    assert config["GUNICORN_GRACEFUL_TIMEOUT"] == "20"


def test_migrate_job_is_a_hook_with_its_own_copy_of_the_environment(default_manifests: list[Manifest]) -> None:
    job = workloads(default_manifests)["migrate"]
    hook_config = find(default_manifests, "ConfigMap", "order-service-migrate")[0]
    hook_secret = find(default_manifests, "Secret", "order-service-migrate")[0]

    assert job["metadata"]["annotations"] == {
        "helm.sh/hook": HOOK,
        "helm.sh/hook-weight": "0",
        "helm.sh/hook-delete-policy": HOOK_DELETE,
    }
    for copy in (hook_config, hook_secret):
        assert copy["metadata"]["annotations"] == {
            "helm.sh/hook": HOOK,
            "helm.sh/hook-weight": "-10",
            "helm.sh/hook-delete-policy": HOOK_DELETE,
        }
    assert containers(job)[0]["envFrom"] == [
        {"configMapRef": {"name": "order-service-migrate"}},
        {"secretRef": {"name": "order-service-migrate"}},
    ]
    assert hook_config["data"] == find(default_manifests, "ConfigMap", "order-service")[0]["data"]
    assert hook_secret["data"] == find(default_manifests, "Secret", "order-service")[0]["data"]


def test_chart_secret_is_read_by_every_container(default_manifests: list[Manifest]) -> None:
    secret = find(default_manifests, "Secret", "order-service")[0]
    key = chart_values([DEFAULT_VALUES_FILE])["secret"]["values"]["DJANGO_SECRET_KEY"]

    assert base64.b64decode(secret["data"]["DJANGO_SECRET_KEY"]).decode() == key
    for name in ("web", "worker", "beat", "consumer"):
        (container,) = containers(workloads(default_manifests)[name])
        assert container["envFrom"] == [
            {"configMapRef": {"name": "order-service"}},
            {"secretRef": {"name": "order-service"}},
        ]


def test_existing_secret_is_used_and_no_secret_rendered(production_manifests: list[Manifest]) -> None:
    assert find(production_manifests, "Secret") == []
    for workload in workloads(production_manifests).values():
        (container,) = containers(workload)
        assert {"secretRef": {"name": "order-service-secrets"}} in container["envFrom"]


def test_a_config_change_rolls_every_deployment() -> None:
    before = chart_render([DEFAULT_VALUES_FILE])
    after = chart_render([DEFAULT_VALUES_FILE], {"config.LOG_LEVEL": "DEBUG"})

    for old, new in zip(find(before, "Deployment"), find(after, "Deployment"), strict=True):
        old_sum = old["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        assert new["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != old_sum


def test_notes_say_how_to_reach_the_api_and_get_a_token() -> None:
    default = notes(chart_values([DEFAULT_VALUES_FILE]))
    production = notes(production_values())

    assert "kubectl -n orders port-forward svc/order-service-web 8000:80" in default
    assert (
        "curl -H 'Host: orders.local' -H 'X-Forwarded-Proto: https' http://127.0.0.1:8000/api/v1/health/ready"
    ) in default
    token = (
        "TOKEN=$(kubectl -n orders exec deploy/order-service-web -c web -- "
        "python manage.py create_api_token <client> --user-id <customer>)"
    )
    assert token in default and token in production
    assert "https://orders.example.com/api/v1/" in production


def test_image_is_the_tag_or_the_pinned_digest() -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    by_tag = chart_render([DEFAULT_VALUES_FILE])
    by_digest = chart_render([DEFAULT_VALUES_FILE], {"image.digest": digest})

    image = "registry.example.com/orders/order-service:0.1.0"
    assert {c["image"] for w in workloads(by_tag).values() for c in containers(w)} == {image}
    assert {c["image"] for w in workloads(by_digest).values() for c in containers(w)} == {f"{image}@{digest}"}
