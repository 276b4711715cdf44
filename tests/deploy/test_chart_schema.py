"""The values charts/order-service refuses, each with the reason it gives: its
values.schema.json, and the cross-field rules its templates `fail` on."""

from pathlib import Path

import pytest

from devstack.deploy.chart import DEFAULT_VALUES_FILE, ChartError, chart_render, find


def refusal(set_values: dict[str, object], values_file: Path = DEFAULT_VALUES_FILE) -> str:
    with pytest.raises(ChartError) as caught:
        chart_render([values_file], set_values)
    return str(caught.value)


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


def test_metrics_port_must_not_be_the_public_port() -> None:
    assert "metrics.port" in refusal({"metrics.port": 8000})
