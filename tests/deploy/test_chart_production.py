"""charts/order-service with what Terraform passes (production_manifests): replicas and
autoscaling, the NetworkPolicies, and monitoring (PodMonitor, alerts, dashboard)."""

import json

from devstack.deploy.chart import DEFAULT_VALUES_FILE, REPO, Manifest, chart_render, find


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


def test_alerts_cover_each_failure_and_select_each_process_kind_by_job(production_manifests: list[Manifest]) -> None:
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
    assert exprs["OrderServiceOutboxPartitionNotDropped"] == f"max(outbox_partitions_past_retention{{{worker}}}) > 0"
    assert exprs["OrderServiceOutboxDefaultPartitionRows"] == f"max(outbox_default_partition_rows{{{worker}}}) > 0"
    for finding in ("missing", "misplaced", "out_of_order"):
        assert f"increase(outbox_audit_{finding}_total{{{worker}}}[15m])" in exprs["OrderServiceDeliveryAuditMismatch"]
    # 30 minutes (metrics.prometheusRule.xminHorizonAgeMinutes), in the gauge's seconds
    assert exprs["OrderServiceTransactionHorizonOld"] == f"max(postgres_xmin_horizon_age_seconds{{{worker}}}) > 1800"
    waits = {r["alert"]: r["for"] for r in rules}
    assert (waits["OrderServiceOutboxPartitionNotDropped"], waits["OrderServiceTransactionHorizonOld"]) == ("2h", "1m")
    for kind in ("web", "worker", "beat", "consumer"):
        assert exprs[f"OrderServiceProcessMissing{kind}"] == (
            f'absent(up{{job="order-service-{kind}",namespace="orders"}} == 1)'
        )
    # that these names are really exposed: orders_project/tests/test_process_metrics.py


def test_the_horizon_and_partition_alert_thresholds_come_from_values() -> None:
    overrides = {
        "metrics.prometheusRule.enabled": True,
        "metrics.prometheusRule.xminHorizonAgeMinutes": 2.5,
        "metrics.prometheusRule.outboxPartitionPastRetentionFor": "26h",
    }
    (rule,) = find(chart_render([DEFAULT_VALUES_FILE], overrides), "PrometheusRule")
    rules = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}

    assert rules["OrderServiceTransactionHorizonOld"]["expr"].endswith(") > 150")
    assert rules["OrderServiceOutboxPartitionNotDropped"]["for"] == "26h"


def test_grafana_dashboard_ships_in_a_labelled_configmap(production_manifests: list[Manifest]) -> None:
    (config_map,) = find(production_manifests, "ConfigMap", "order-service-dashboards")
    shipped = json.loads(config_map["data"]["order-service.json"])

    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Orders"}
    assert shipped == json.loads((REPO / "charts/order-service/dashboards/order-service.json").read_text())


def test_no_kafka_topics_in_the_chart(production_manifests: list[Manifest]) -> None:
    assert [doc for doc in production_manifests if doc["apiVersion"].startswith("kafka.strimzi.io/")] == []
