"""terraform/ read offline with python-hcl2 (no providers, no cluster): the app release
gives the service every setting production requires, every topic the settings name
has a Strimzi KafkaTopic with the right policy, and the module is pinned and documented.

Expressions are not run: the resolver in tests/deploy/terraform.py follows references
and gives up on function calls.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings

from tests.deploy.terraform import (
    CHART_DIR,
    REPO,
    TERRAFORM,
    app_release,
    for_each_items,
    hcl_load,
    local_in,
    origin,
    pure_reference,
    resolve,
    resolved_or_none,
    terraform_module,
)
from tests.deploy.terraform_values import EXAMPLE_TFVARS, Evaluator, example_known, module_with_tfvars

SETTINGS_FILE = REPO / "orders_project" / "settings.py"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# Values of the chart that are maps of free-form keys, not a fixed structure.
CHART_FREE_FORM = {("config",), ("secret", "values")}


# --- What the settings read --------------------------------------------------------------


@dataclass(frozen=True)
class EnvRead:
    name: str
    reader: str  # env_str, env_int, env_list, ...
    default: ast.expr | None  # None: no default


_MISSING = object()
_COMPUTED = object()


def _env_name(node: ast.AST) -> str | None:
    """NAME for an env_*("NAME", ...) call, else None."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id.startswith("env_")
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


@cache
def settings_env_reads() -> tuple[EnvRead, ...]:
    """Every env_*("NAME", default) call in settings.py that production runs: not those
    in `if DEBUG:` bodies, nor those under an `if` that first checks the same variable
    (`if env_str("POD_IP", "-") != "-": ... env_str("POD_IP")`)."""
    tree = ast.parse(SETTINGS_FILE.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        debug_only = isinstance(node.test, ast.Name) and node.test.id == "DEBUG"
        checked = {name for inner in ast.walk(node.test) if (name := _env_name(inner))}
        for inner in (inner for statement in node.body for inner in ast.walk(statement)):
            if debug_only or _env_name(inner) in checked:
                skipped.add(id(inner))
    reads = []
    for node in ast.walk(tree):
        name = _env_name(node)
        if name is None or id(node) in skipped:
            continue
        assert isinstance(node, ast.Call)
        default = node.args[1] if len(node.args) > 1 else None
        default = next((keyword.value for keyword in node.keywords if keyword.arg == "default"), default)
        reads.append(EnvRead(name, node.func.id if isinstance(node.func, ast.Name) else "", default))
    return tuple(reads)


def production_default(read: EnvRead) -> Any:
    """The default a production process (DJANGO_DEBUG false) gets: a literal,
    _MISSING when there is none, _COMPUTED when it is computed."""
    expression = read.default
    if expression is None:
        return _MISSING
    if isinstance(expression, ast.IfExp) and isinstance(expression.test, ast.Name) and expression.test.id == "DEBUG":
        expression = expression.orelse
    try:
        return ast.literal_eval(expression)
    except ValueError:
        return _COMPUTED


def points_here(value: Any) -> bool:
    items = value if isinstance(value, list | tuple) else [value]
    return any(isinstance(item, str) and any(host in item for host in LOOPBACK_HOSTS) for item in items)


def production_must_set(read: EnvRead) -> bool:
    """No usable default in production: none at all (env_str raises), an empty one where
    DEBUG has a real one, or one that points at the process's own host."""
    default = production_default(read)
    if default is _MISSING or default is None:
        return True
    debug_dependent = isinstance(read.default, ast.IfExp)
    if debug_dependent and default in ("", [], ()):
        return True
    return points_here(default)


def settings_topic_envs() -> dict[str, str]:
    """KAFKA_TOPIC_* string settings (topic names) -> their default."""
    return {
        read.name: ast.literal_eval(read.default)
        for read in settings_env_reads()
        if read.name.startswith("KAFKA_TOPIC_") and read.reader == "env_str" and read.default is not None
    }


def chart_values() -> dict[str, Any]:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert isinstance(values, dict)
    return values


# --- Kafka topics as Terraform declares them ---------------------------------------------


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
            spec = resolve(manifest["spec"], module, each)
            name_expression = spec.get("topicName", manifest["metadata"]["name"])
            config = resolve(spec.get("config", {}), module, each)
            labels = resolve(manifest["metadata"]["labels"], module, each)
            topics.append(
                Topic(
                    name=resolve(name_expression, module, each),
                    name_origin=origin(name_expression, module, each),
                    cluster=resolve(labels["strimzi.io/cluster"], module, each),
                    partitions=resolve(spec.get("partitions"), module, each),
                    replicas=resolve(spec.get("replicas"), module, each),
                    config={key: resolve(value, module, each) for key, value in config.items()},
                )
            )
    return tuple(topics)


def topic(name: str) -> Topic:
    found = [candidate for candidate in kafka_topics() if candidate.name == name]
    assert len(found) == 1, f"{len(found)} KafkaTopic resources for topic {name!r}"
    return found[0]


def only(resources: dict[str, dict[str, Any]], what: str) -> dict[str, Any]:
    assert len(resources) == 1, f"expected one {what}, found {sorted(resources)}"
    return next(iter(resources.values()))


# --- Topics ------------------------------------------------------------------------------


def test_every_topic_the_settings_name_has_a_kafka_topic():
    # given the topics the running settings use (Django's KAFKA_TOPICS and the DLQ)
    wanted = {*settings.KAFKA_TOPICS.values(), settings.KAFKA_TOPIC_USER_EVENTS_DLQ}
    assert "user.events.dlq" in wanted

    # when the KafkaTopic resources are read with the variables at their defaults
    declared = [declared.name for declared in kafka_topics()]

    # then each has exactly one, and there is none the app does not use
    assert sorted(declared) == sorted(wanted)
    kafka = only(terraform_module().manifests("Kafka"), "Kafka resource")
    kafka_name = resolve(kafka["manifest"]["metadata"]["name"], terraform_module())
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
        assert resolve(config[env], module) == default, env
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
        told = int(resolve(config[env], module))
        assert {int(topic_properties[env](declared)) for declared in kafka_topics()} == {told}, env


def test_kafka_runs_in_kraft_mode_with_node_pools_and_a_topic_operator():
    module = terraform_module()
    kafka = only(module.manifests("Kafka"), "Kafka resource")["manifest"]
    name = resolve(kafka["metadata"]["name"], module)
    annotations = resolve(kafka["metadata"]["annotations"], module)
    assert annotations["strimzi.io/node-pools"] == "enabled"
    assert annotations["strimzi.io/kraft"] == "enabled"
    assert "zookeeper" not in kafka["spec"]
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    broker_config = resolve(kafka["spec"]["kafka"]["config"], module)
    assert resolve(broker_config["min.insync.replicas"], module) == 2
    assert resolve(broker_config["default.replication.factor"], module) == 3

    pools = [
        (body["manifest"], each)
        for body in module.manifests("KafkaNodePool").values()
        for each in for_each_items(body, module)
    ]
    assert pools
    roles: set[str] = set()
    replicas: dict[str, int] = {}
    for pool, each in pools:
        assert resolve(resolve(pool["metadata"]["labels"], module, each)["strimzi.io/cluster"], module) == name
        pool_roles = [resolve(role, module, each) for role in resolve(pool["spec"]["roles"], module, each)]
        roles.update(pool_roles)
        for role in pool_roles:
            replicas[role] = replicas.get(role, 0) + resolve(pool["spec"]["replicas"], module, each)
    assert roles == {"controller", "broker"}
    assert replicas["broker"] >= 3 and replicas["controller"] >= 3


def test_the_app_bootstraps_from_the_strimzi_plain_listener():
    module = terraform_module()
    kafka = only(module.manifests("Kafka"), "Kafka resource")["manifest"]
    name = resolve(kafka["metadata"]["name"], module)
    namespace = resolve(kafka["metadata"]["namespace"], module)
    plain = [
        listener
        for listener in resolve(kafka["spec"]["kafka"]["listeners"], module)
        if listener["type"] == "internal" and listener["tls"] is False
    ]
    assert len(plain) == 1, "the app speaks plain Kafka: one internal listener without TLS"
    bootstrap = resolve(app_release().config["KAFKA_BOOTSTRAP_SERVERS"], module)
    assert bootstrap == f"{name}-kafka-bootstrap.{namespace}.svc:{plain[0]['port']}"


# --- Settings production requires --------------------------------------------------------


def test_the_release_sets_every_setting_production_requires():
    # given the settings a production process cannot do without (parsed from settings.py)
    module = terraform_module()
    release = app_release()
    required = {read.name for read in settings_env_reads() if production_must_set(read)}
    assert "DJANGO_SECRET_KEY" in required  # the parser found the env_str calls

    # when the release's config and its Secret are combined
    secret_keys = set(release.secret["data"])
    provided = set(release.config) | secret_keys

    # then each is set, and to something usable in a cluster
    assert required <= provided, f"not set by the release: {sorted(required - provided)}"
    for name in sorted(required - secret_keys):
        value = resolved_or_none(release.config[name], module)
        if value is not None:  # None: a function of the inputs (e.g. join of the allowed hosts)
            assert value != "", name
            assert not points_here(value), f"{name}={value!r} points at the pod itself"


def test_the_existing_secret_holds_every_key_the_chart_would_otherwise_create():
    release = app_release()
    assert release.values["secret"]["create"] is False
    expected = set(chart_values()["secret"]["values"])
    assert expected == set(release.secret["data"])
    assert not expected & set(release.config), "secrets must not be in the ConfigMap"


def test_the_django_secret_key_is_long_enough():
    module = terraform_module()
    check = re.search(r"len\(SECRET_KEY\)\s*<\s*(\d+)", SETTINGS_FILE.read_text())
    assert check, "settings.py no longer checks the secret key's length"
    minimum = int(check.group(1))
    source = pure_reference(app_release().secret["data"]["DJANGO_SECRET_KEY"])
    match = re.fullmatch(r"random_password\.(\w+)\.result", source or "")
    assert match, "DJANGO_SECRET_KEY must come from a random_password"
    assert module.resources["random_password"][match.group(1)]["length"] >= minimum


def test_the_release_values_fit_the_chart_values_structure():
    # Every key Terraform sets exists in charts/order-service/values.yaml (the schema
    # refuses unknown keys); config and secret.values take any key.
    def unknown(ours: dict[str, Any], theirs: dict[str, Any], path: tuple[str, ...]) -> list[str]:
        problems = []
        for key, value in ours.items():
            if key not in theirs:
                problems.append(".".join((*path, key)))
            elif isinstance(value, dict) and isinstance(theirs[key], dict) and (*path, key) not in CHART_FREE_FORM:
                problems += unknown(value, theirs[key], (*path, key))
        return problems

    assert unknown(app_release().values, chart_values(), ()) == []


def test_the_app_release_comes_last_and_uses_the_required_image_tag():
    module = terraform_module()
    body = app_release().body
    assert Path(resolve(body["chart"], module)).resolve() == CHART_DIR
    assert app_release().values["image"]["tag"] == "${var.app_image_tag}"
    assert "default" not in module.variables["app_image_tag"], "app_image_tag must be required"
    after = {pure_reference(dependency) for dependency in body["depends_on"]}
    for kind in ("Kafka", "KafkaTopic", "Cluster"):
        for name in module.manifests(kind):
            assert f"kubernetes_manifest.{name}" in after, f"the release must wait for {kind} {name}"
    for name, release in module.resources["helm_release"].items():
        if release["chart"] in ("valkey", "redis"):
            assert f"helm_release.{name}" in after, "the release must wait for Redis"


# --- PostgreSQL and Valkey ---------------------------------------------------------------


def test_postgres_is_a_cloudnativepg_cluster_the_app_logs_in_to():
    module = terraform_module()
    release = app_release()
    cluster = only(module.manifests("Cluster"), "CloudNativePG Cluster")["manifest"]
    assert str(cluster["apiVersion"]).startswith("postgresql.cnpg.io/")
    spec = cluster["spec"]
    assert resolve(spec["instances"], module) == 3
    initdb = resolve(spec["bootstrap"], module)["initdb"]
    assert resolve(initdb["database"], module) == resolve(release.config["POSTGRES_DB"], module) == "orders"
    assert resolve(initdb["owner"], module) == resolve(release.config["POSTGRES_USER"], module) == "orders"

    # the owner's password is the one in the app's Secret
    secret_reference = pure_reference(resolve(initdb["secret"], module)["name"]) or ""
    secret_type, secret_name = secret_reference.split(".")[:2]
    owner_secret = module.resources[secret_type][secret_name]
    assert owner_secret["type"] == "kubernetes.io/basic-auth"
    assert owner_secret["data"]["password"] == release.secret["data"]["POSTGRES_PASSWORD"]

    # the app connects to the read-write Service, which follows the primary on failover
    name = resolve(cluster["metadata"]["name"], module)
    namespace = resolve(cluster["metadata"]["namespace"], module)
    poolers = module.manifests("Pooler")
    if not poolers:
        assert resolve(release.config["POSTGRES_SERVER"], module) == f"{name}-rw.{namespace}.svc"
    transaction_pooling = any(
        resolve(body["manifest"]["spec"], module).get("pgbouncer", {}).get("poolMode") == "transaction"
        for body in poolers.values()
    )
    # PgBouncer in transaction mode breaks server-side cursors (PITFALLS.md)
    cursors_off = resolve(release.config.get("POSTGRES_DISABLE_SERVER_SIDE_CURSORS", "false"), module)
    assert (cursors_off == "true") == transaction_pooling


def test_postgres_updates_its_primary_by_switchover_without_supervision():
    # CloudNativePG 1.30 defaults primaryUpdateMethod to "restart": the primary would
    # restart in place on every image or restart-requiring parameter change.
    module = terraform_module()
    spec = only(module.manifests("Cluster"), "CloudNativePG Cluster")["manifest"]["spec"]
    assert resolve(spec["primaryUpdateStrategy"], module) == "unsupervised"
    assert resolve(spec["primaryUpdateMethod"], module) == "switchover"
    # a switchover needs a standby to switch to
    assert resolve(spec["instances"], module) >= 2


def test_valkey_keeps_its_data_and_shares_the_apps_password():
    module = terraform_module()
    release = app_release()
    valkeys = [
        body for body in module.resources.get("helm_release", {}).values() if body["chart"] in ("valkey", "redis")
    ]
    assert len(valkeys) == 1
    values = module.locals[local_in(valkeys[0]["values"][0], "yamlencode")]

    directives = dict(
        line.split(None, 1) for line in resolve(values["extraConfig"], module).splitlines() if line.strip()
    )
    assert directives["maxmemory-policy"] == "noeviction"
    assert directives["appendonly"] == "yes"
    assert values["persistence"]["enabled"] is True

    auth = values["auth"]
    assert auth["enabled"] is True
    users_secret_reference = pure_reference(auth["usersExistingSecret"]) or ""
    secret_type, secret_name = users_secret_reference.split(".")[:2]
    users_secret = module.resources[secret_type][secret_name]
    password_key = auth["aclUsers"]["default"].get("passwordKey", "default")
    assert users_secret["data"][password_key] == release.secret["data"]["REDIS_PASSWORD"]

    host = resolve(release.config["REDIS_HOST"], module)
    assert host.split(".")[0] == resolve(values["fullnameOverride"], module)


def test_a_rotated_valkey_password_restarts_valkey_too():
    # Valkey reads its users Secret only at start (the chart's init container builds the
    # ACL), as the app pods read theirs: both must roll on `-replace=random_password.valkey`.
    module = module_with_tfvars(EXAMPLE_TFVARS)
    known = example_known(module)
    rotated = {**known, "random_password.valkey.result": "another-password"}

    def annotations(known: dict[str, Any]) -> dict[str, str]:
        return Evaluator(module, known).value(module.locals["valkey_values"])["podAnnotations"]

    before, after = annotations(known), annotations(rotated)
    assert len(before["checksum/users-secret"]) == 64
    assert after["checksum/users-secret"] != before["checksum/users-secret"]
    assert annotations(dict(known)) == before


# --- The module itself -------------------------------------------------------------------


def test_providers_and_charts_are_pinned():
    blocks = terraform_module().terraform_blocks
    assert any("required_version" in block for block in blocks)
    providers: dict[str, Any] = {}
    for block in blocks:
        for required in block.get("required_providers", []):
            providers.update(required)
    assert set(providers) >= {"kubernetes", "helm", "random"}
    for name, requirement in providers.items():
        assert requirement["source"] == f"hashicorp/{name}"
        assert re.fullmatch(r"(~>\s*\d+\.\d+(\.\d+)?|=?\s*\d+\.\d+\.\d+)", requirement["version"]), (
            f"{name}: pin the version exactly or with ~>, got {requirement['version']!r}"
        )

    module = terraform_module()
    for name, body in module.resources.get("helm_release", {}).items():
        if "repository" in body:
            assert re.fullmatch(r"\d+\.\d+\.\d+", str(resolve(body.get("version"), module))), name


def test_every_variable_has_a_type_and_a_description():
    for name, variable in terraform_module().variables.items():
        assert variable.get("type"), f"variable {name} has no type"
        assert str(variable.get("description", "")).strip(), f"variable {name} has no description"


def test_every_output_has_a_description():
    outputs = terraform_module().outputs
    assert {"namespace", "api_service_name", "kafka_bootstrap_servers", "app_secret_name"} <= set(outputs)
    for name, output in outputs.items():
        assert str(output.get("description", "")).strip(), f"output {name} has no description"


def test_the_example_tfvars_sets_the_required_variables_and_only_declared_ones():
    variables = terraform_module().variables
    example = hcl_load(TERRAFORM / "terraform.tfvars.example")
    assert set(example) <= set(variables), f"undeclared: {sorted(set(example) - set(variables))}"
    required = {name for name, variable in variables.items() if "default" not in variable}
    assert required <= set(example), f"missing required: {sorted(required - set(example))}"


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH")
def test_terraform_fmt_is_clean():
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}{result.stderr}"
