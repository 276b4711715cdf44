"""PostgreSQL (CloudNativePG) and Valkey as terraform/ declares them, read offline: the app
logs in to what Terraform makes, with the password in its Secret, and both keep their data."""

from __future__ import annotations

from typing import Any

from devstack.deploy.expressions import Evaluator, evaluate
from devstack.deploy.terraform import EXAMPLE_TFVARS, module_with_tfvars, pure_reference, terraform_module
from devstack.deploy.terraform_values import app_release, example_known, local_in


def test_postgres_is_a_cloudnativepg_cluster_the_app_logs_in_to():
    module = terraform_module()
    release = app_release()
    cluster = module.only_manifest("Cluster")
    assert str(cluster["apiVersion"]).startswith("postgresql.cnpg.io/")
    spec = cluster["spec"]
    assert evaluate(spec["instances"], module) == 3
    initdb = evaluate(spec["bootstrap"], module)["initdb"]
    assert evaluate(initdb["database"], module) == evaluate(release.config["POSTGRES_DB"], module) == "orders"
    assert evaluate(initdb["owner"], module) == evaluate(release.config["POSTGRES_USER"], module) == "orders"

    # the owner's password is the one in the app's Secret
    secret_reference = pure_reference(spec["bootstrap"]["initdb"]["secret"]["name"]) or ""
    secret_type, secret_name = secret_reference.split(".")[:2]
    owner_secret = module.resources[secret_type][secret_name]
    assert owner_secret["type"] == "kubernetes.io/basic-auth"
    assert owner_secret["data"]["password"] == release.secret["data"]["POSTGRES_PASSWORD"]

    # the app connects to the read-write Service, which follows the primary on failover
    name = evaluate(cluster["metadata"]["name"], module)
    namespace = evaluate(cluster["metadata"]["namespace"], module)
    poolers = module.manifests("Pooler")
    if not poolers:
        assert evaluate(release.config["POSTGRES_SERVER"], module) == f"{name}-rw.{namespace}.svc"
    transaction_pooling = any(
        evaluate(body["manifest"]["spec"], module).get("pgbouncer", {}).get("poolMode") == "transaction"
        for body in poolers.values()
    )
    # PgBouncer in transaction mode breaks server-side cursors (PITFALLS.md)
    cursors_off = evaluate(release.config.get("POSTGRES_DISABLE_SERVER_SIDE_CURSORS", "false"), module)
    assert (cursors_off == "true") == transaction_pooling


def test_postgres_updates_its_primary_by_switchover_without_supervision():
    # CloudNativePG 1.30 defaults primaryUpdateMethod to "restart": the primary would
    # restart in place on every image or restart-requiring parameter change.
    module = terraform_module()
    spec = module.only_manifest("Cluster")["spec"]
    assert evaluate(spec["primaryUpdateStrategy"], module) == "unsupervised"
    assert evaluate(spec["primaryUpdateMethod"], module) == "switchover"
    # a switchover needs a standby to switch to
    assert evaluate(spec["instances"], module) >= 2


def test_valkey_keeps_its_data_and_shares_the_apps_password():
    module = terraform_module()
    release = app_release()
    valkeys = [
        body for body in module.resources.get("helm_release", {}).values() if body["chart"] in ("valkey", "redis")
    ]
    assert len(valkeys) == 1
    values = module.locals[local_in(valkeys[0]["values"][0], "yamlencode")]

    directives = dict(
        line.split(None, 1) for line in evaluate(values["extraConfig"], module).splitlines() if line.strip()
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

    host = evaluate(release.config["REDIS_HOST"], module)
    assert host.split(".")[0] == evaluate(values["fullnameOverride"], module)


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
