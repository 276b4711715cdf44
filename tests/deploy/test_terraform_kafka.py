"""The Kafka of terraform/ (Strimzi, KRaft) and its topics, read offline: every topic the
settings name has a KafkaTopic with the right policy and replication, and the app
release tells the app those names and numbers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings

from devstack.deploy.expressions import evaluate, for_each_items
from devstack.deploy.terraform import origin, terraform_module
from devstack.deploy.terraform_values import app_release
from tests.deploy.settings_reads import settings_env_reads, settings_topic_envs


@dataclass(frozen=True)
class Topic:
    name: str
    name_origin: Any  # the expression the name comes from (e.g. ${var.kafka_topics.user_created})
    cluster: Any
    partitions: Any
    replicas: Any
    config: dict[str, Any]


@cache
def kafka_topics() -> tuple[Topic, ...]:
    module = terraform_module()
    topics = []
    for body in module.manifests("KafkaTopic").values():
        manifest = body["manifest"]
        assert str(manifest["apiVersion"]).startswith("kafka.strimzi.io/"), manifest["apiVersion"]
        for each in for_each_items(body, module):
            spec = evaluate(manifest["spec"], module, each)
            # as written: where the name comes from
            name_expression = manifest["spec"].get("topicName", manifest["metadata"]["name"])
            labels = evaluate(manifest["metadata"]["labels"], module, each)
            topics.append(
                Topic(
                    name=evaluate(name_expression, module, each),
                    name_origin=origin(name_expression, module, each),
                    cluster=labels["strimzi.io/cluster"],
                    partitions=spec.get("partitions"),
                    replicas=spec.get("replicas"),
                    config=spec.get("config", {}),
                )
            )
    return tuple(topics)


def topic(name: str) -> Topic:
    found = [candidate for candidate in kafka_topics() if candidate.name == name]
    assert len(found) == 1, f"{len(found)} KafkaTopic resources for topic {name!r}"
    return found[0]


def test_every_topic_the_settings_name_has_a_kafka_topic():
    # given the topics the running settings use (Django's KAFKA_TOPICS and the DLQ)
    wanted = {*settings.KAFKA_TOPICS.values(), settings.KAFKA_TOPIC_USER_EVENTS_DLQ}
    assert "user.events.dlq" in wanted

    # when the KafkaTopic resources are read with the variables at their defaults
    declared = [declared.name for declared in kafka_topics()]

    # then each has exactly one, and there is none the app does not use
    assert sorted(declared) == sorted(wanted)
    kafka_name = evaluate(terraform_module().only_manifest("Kafka")["metadata"]["name"], terraform_module())
    assert {declared.cluster for declared in kafka_topics()} == {kafka_name}


def test_the_release_gives_the_app_the_names_of_those_topics():
    # given every KAFKA_TOPIC_* name setting and its default in settings.py
    module = terraform_module()
    config = app_release().config
    topic_envs = settings_topic_envs()
    assert len(topic_envs) == len(settings.KAFKA_TOPICS) + 1  # the event topics and the DLQ

    for env, default in topic_envs.items():
        # then the release sets it, by default to the app's own default...
        assert env in config, f"the release does not set {env}"
        assert evaluate(config[env], module) == default, env
        # ...from the same expression the KafkaTopic takes its name from, so
        # overriding var.kafka_topics moves both together
        assert origin(config[env], module) == topic(default).name_origin, env


def test_user_topics_are_compacted_and_the_others_deleted_by_age():
    user_topics = {name for event, name in settings.KAFKA_TOPICS.items() if event.startswith("user.")}
    assert len(user_topics) == 3

    for declared in kafka_topics():
        expected = "compact" if declared.name in user_topics else "delete"
        assert declared.config.get("cleanup.policy") == expected, declared.name


def test_topics_are_replicated_for_production_by_default():
    # 3 copies, and an acks=all write needs 2 of them: one broker may be down.
    for declared in kafka_topics():
        assert declared.replicas == 3, declared.name
        assert int(declared.config["min.insync.replicas"]) == 2, declared.name
        assert declared.partitions >= 1, declared.name


def test_the_app_is_told_the_partitions_and_replication_the_topics_have():
    # KAFKA_TOPIC_* number settings (create_kafka_topics uses them) agree with the KafkaTopics.
    module = terraform_module()
    config = app_release().config
    topic_properties = {
        "KAFKA_TOPIC_PARTITIONS": lambda declared: declared.partitions,
        "KAFKA_TOPIC_REPLICATION_FACTOR": lambda declared: declared.replicas,
        "KAFKA_TOPIC_MIN_INSYNC_REPLICAS": lambda declared: declared.config["min.insync.replicas"],
    }
    number_settings = [
        read.name for read in settings_env_reads() if read.name.startswith("KAFKA_TOPIC_") and read.reader == "env_int"
    ]
    assert number_settings
    for env in number_settings:
        assert env in topic_properties, f"settings read {env}: teach this test which KafkaTopic field it matches"
        assert env in config, f"the release does not set {env}"
        told = int(evaluate(config[env], module))
        assert {int(topic_properties[env](declared)) for declared in kafka_topics()} == {told}, env


def test_kafka_runs_in_kraft_mode_with_node_pools_and_a_topic_operator():
    module = terraform_module()
    kafka = module.only_manifest("Kafka")
    name = evaluate(kafka["metadata"]["name"], module)
    annotations = evaluate(kafka["metadata"]["annotations"], module)
    assert annotations["strimzi.io/node-pools"] == "enabled"
    assert annotations["strimzi.io/kraft"] == "enabled"
    assert "zookeeper" not in kafka["spec"]
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    broker_config = evaluate(kafka["spec"]["kafka"]["config"], module)
    assert evaluate(broker_config["min.insync.replicas"], module) == 2
    assert evaluate(broker_config["default.replication.factor"], module) == 3

    pools = [
        (body["manifest"], each)
        for body in module.manifests("KafkaNodePool").values()
        for each in for_each_items(body, module)
    ]
    assert pools
    roles: set[str] = set()
    replicas: dict[str, int] = {}
    for pool, each in pools:
        assert evaluate(evaluate(pool["metadata"]["labels"], module, each)["strimzi.io/cluster"], module) == name
        pool_roles = [evaluate(role, module, each) for role in evaluate(pool["spec"]["roles"], module, each)]
        roles.update(pool_roles)
        for role in pool_roles:
            replicas[role] = replicas.get(role, 0) + evaluate(pool["spec"]["replicas"], module, each)
    assert roles == {"controller", "broker"}
    assert replicas["broker"] >= 3 and replicas["controller"] >= 3


def test_the_app_bootstraps_from_the_strimzi_plain_listener():
    module = terraform_module()
    kafka = module.only_manifest("Kafka")
    name = evaluate(kafka["metadata"]["name"], module)
    namespace = evaluate(kafka["metadata"]["namespace"], module)
    plain = [
        listener
        for listener in evaluate(kafka["spec"]["kafka"]["listeners"], module)
        if listener["type"] == "internal" and listener["tls"] is False
    ]
    assert len(plain) == 1, "the app speaks plain Kafka: one internal listener without TLS"
    bootstrap = evaluate(app_release().config["KAFKA_BOOTSTRAP_SERVERS"], module)
    assert bootstrap == f"{name}-kafka-bootstrap.{namespace}.svc:{plain[0]['port']}"
