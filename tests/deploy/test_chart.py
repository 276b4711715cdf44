"""charts/order-service rendered offline: the runtime contract (commands, probes, env),
the values it refuses, and the Kubernetes properties every pod must have."""

import base64
import json
import shlex
from pathlib import Path

import pytest

from devstack.deploy.chart import (
    DEFAULT_VALUES_FILE,
    KUBERNETES_VERSIONS,
    REPO,
    ChartError,
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


def refusal(set_values: dict[str, object], values_file: Path = DEFAULT_VALUES_FILE) -> str:
    with pytest.raises(ChartError) as caught:
        chart_render([values_file], set_values)
    return str(caught.value)


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


def test_beat_is_one_replica_recreated(production_manifests: list[Manifest]) -> None:
    beat = find(production_manifests, "Deployment", "order-service-beat")[0]

    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert [doc["metadata"]["name"] for doc in find(production_manifests, "HorizontalPodAutoscaler")] == [
        "order-service-web",
        "order-service-worker",
    ]
    assert [doc["metadata"]["name"] for doc in find(production_manifests, "PodDisruptionBudget")] == [
        "order-service-web",
        "order-service-worker",
        "order-service-consumer",
    ]


def test_schema_refuses_two_beats() -> None:
    assert "- at '/beat/replicas': value must be 1" in refusal({"beat.replicas": 2})


def test_schema_refuses_missing_or_empty_image_tag() -> None:
    assert "- at '/image/tag': minLength: got 0, want 1" in refusal({"image.tag": ""})
    # null drops the key from the chart's defaults, as `--set image.tag=null` does.
    assert "- at '/image': missing property 'tag'" in refusal({"image.tag": None})


def test_schema_refuses_negative_or_malformed_resources() -> None:
    assert "- at '/web/resources/requests/cpu': '-1' does not match pattern" in refusal(
        {"web.resources.requests.cpu": "-1"}
    )
    assert "- at '/worker/resources/limits/memory': '512 MB' does not match pattern" in refusal(
        {"worker.resources.limits.memory": "512 MB"}
    )
    assert "- at '/consumer/resources/requests/cpu': minimum: got -0.5, want 0" in refusal(
        {"consumer.resources.requests.cpu": -0.5}
    )


def test_schema_refuses_unknown_top_level_key() -> None:
    assert "- at '': additional properties 'replicaCount' not allowed" in refusal({"replicaCount": 3})


def test_consumers_beyond_the_partitions_are_refused_with_a_reason() -> None:
    assert (
        "consumer.replicas (4) is more than kafka.userTopicPartitions (3): a consumer group gives each "
        "partition to one member, so the extra consumers would sit idle."
    ) in refusal({"consumer.replicas": 4})


def test_as_many_consumers_as_partitions_render() -> None:
    manifests = chart_render([DEFAULT_VALUES_FILE], {"consumer.replicas": 3})

    assert find(manifests, "Deployment", "order-service-consumer")[0]["spec"]["replicas"] == 3


def test_cross_field_rules_refuse_with_a_reason() -> None:
    assert "secret.values.DJANGO_SECRET_KEY must be at least 50 characters" in refusal(
        {"secret.values.DJANGO_SECRET_KEY": "short"}
    )
    assert "terminationGracePeriodSeconds (25) must be more than web.preStopSleepSeconds (5) + " in refusal(
        {"terminationGracePeriodSeconds": 25}
    )
    assert "web.pdb.minAvailable (2) must be less than its replicas (2)" in refusal({"web.pdb.minAvailable": 2})
    assert 'ingress.host "api.example.com" is not in config.DJANGO_ALLOWED_HOSTS' in refusal(
        {"ingress.enabled": True, "ingress.host": "api.example.com"}
    )
    assert "config.POSTGRES_PASSWORD: secrets do not belong in the ConfigMap" in refusal(
        {"config.POSTGRES_PASSWORD": "x"}
    )


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


def test_autoscaled_deployments_leave_replicas_to_the_hpa(production_manifests: list[Manifest]) -> None:
    deployments = {doc["metadata"]["name"]: doc["spec"] for doc in find(production_manifests, "Deployment")}
    web_hpa = find(production_manifests, "HorizontalPodAutoscaler", "order-service-web")[0]["spec"]

    assert "replicas" not in deployments["order-service-web"]
    assert "replicas" not in deployments["order-service-worker"]
    assert deployments["order-service-consumer"]["replicas"] == 3
    assert web_hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "order-service-web"}
    assert (web_hpa["minReplicas"], web_hpa["maxReplicas"]) == (2, 10)


def test_network_policy_only_opens_the_web_port_the_metrics_port_and_the_server_ports(
    default_manifests: list[Manifest], production_manifests: list[Manifest]
) -> None:
    assert find(default_manifests, "NetworkPolicy") == []
    everyone = find(production_manifests, "NetworkPolicy", "order-service")[0]["spec"]
    web = find(production_manifests, "NetworkPolicy", "order-service-web")[0]["spec"]
    metrics = find(production_manifests, "NetworkPolicy", "order-service-metrics")[0]["spec"]
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}

    assert everyone["ingress"] == []
    assert [[(p["port"], p["protocol"]) for p in rule["ports"]] for rule in everyone["egress"]] == [
        [(53, "TCP"), (53, "UDP")],
        [(5432, "TCP")],
        [(6379, "TCP")],
        [(9092, "TCP")],
    ]
    assert web["policyTypes"] == ["Ingress"]
    assert [rule["ports"] for rule in web["ingress"]] == [[{"port": "http", "protocol": "TCP"}]]
    assert monitoring not in web["ingress"][0].get("from", [])
    # the metrics port of the four long-running kinds, from the monitoring namespace only
    assert metrics["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["web", "worker", "beat", "consumer"]}
    ]
    assert metrics["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}], "from": [monitoring]}]


def test_monitoring_is_off_by_default_and_scrapes_every_process_kind_on_its_metrics_port(
    default_manifests: list[Manifest], production_manifests: list[Manifest]
) -> None:
    kinds = ("PodMonitor", "PrometheusRule")
    assert [doc for kind in kinds for doc in find(default_manifests, kind)] == []
    assert find(default_manifests, "ConfigMap", "order-service-dashboards") == []
    (monitor,) = find(production_manifests, "PodMonitor")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]

    assert monitor["spec"]["selector"]["matchExpressions"][0]["values"] == ["web", "worker", "beat", "consumer"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    assert endpoint["relabelings"][0] == {
        "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
        "targetLabel": "job",
        "replacement": "order-service-$1",
    }


def test_alerts_cover_the_issue_and_select_each_process_kind_by_job(production_manifests: list[Manifest]) -> None:
    (rule,) = find(production_manifests, "PrometheusRule")
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    exprs = {r["alert"] + r["labels"].get("component", ""): r["expr"] for r in rules}

    worker = 'job="order-service-worker",namespace="orders"'
    assert exprs["OrderServiceOutboxBacklog"] == f"max(outbox_oldest_pending_age_seconds{{{worker}}}) > 60"
    assert exprs["OrderServiceOutboxDeadEvents"].endswith("> 0")
    assert "outbox_delivery_delay_seconds_bucket" in exprs["OrderServiceDeliverySlow"]
    assert "django_http_responses_total_by_status_total" in exprs["OrderServiceHigh5xxRatio"]
    assert "delta(kafka_consumer_lag_messages" in exprs["OrderServiceConsumerLagGrowing"]
    assert "lifecycle_oldest_due_age_seconds" in exprs["OrderServiceLifecycleBehind"]
    for kind in ("web", "worker", "beat", "consumer"):
        assert exprs[f"OrderServiceProcessMissing{kind}"] == (
            f'absent(up{{job="order-service-{kind}",namespace="orders"}} == 1)'
        )
    # that these names are really exposed: orders_project/tests/test_process_metrics.py


def test_grafana_dashboard_ships_in_a_labelled_configmap(production_manifests: list[Manifest]) -> None:
    (config_map,) = find(production_manifests, "ConfigMap", "order-service-dashboards")
    shipped = json.loads(config_map["data"]["order-service.json"])

    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Orders"}
    assert shipped == json.loads((REPO / "charts/order-service/dashboards/order-service.json").read_text())


def test_metrics_port_must_not_be_the_public_port() -> None:
    assert "metrics.port" in refusal({"metrics.port": 8000})


def test_no_kafka_topics_in_the_chart(production_manifests: list[Manifest]) -> None:
    assert [doc for doc in production_manifests if doc["apiVersion"].startswith("kafka.strimzi.io/")] == []


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
