"""The app release of terraform/ read offline: it sets every setting production requires,
its Secret holds what the chart would otherwise create, its values fit the chart, and it
is installed last with the required image tag."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from devstack.deploy.expressions import evaluate, evaluate_or_none
from devstack.deploy.terraform import CHART_DIR, pure_reference, terraform_module
from devstack.deploy.terraform_values import app_release
from tests.deploy.settings_reads import SETTINGS_FILE, points_here, production_must_set, settings_env_reads

# Values of the chart that are maps of free-form keys, not a fixed structure.
CHART_FREE_FORM = {("config",), ("secret", "values")}


def chart_values() -> dict[str, Any]:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert isinstance(values, dict)
    return values


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
        value = evaluate_or_none(release.config[name], module)
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
    assert Path(evaluate(body["chart"], module)).resolve() == CHART_DIR
    assert app_release().values["image"]["tag"] == "${var.app_image_tag}"
    assert "default" not in module.variables["app_image_tag"], "app_image_tag must be required"
    after = {pure_reference(dependency) for dependency in body["depends_on"]}
    for kind in ("Kafka", "KafkaTopic", "Cluster"):
        for name in module.manifests(kind):
            assert f"kubernetes_manifest.{name}" in after, f"the release must wait for {kind} {name}"
    for name, release in module.resources["helm_release"].items():
        if release["chart"] in ("valkey", "redis"):
            assert f"helm_release.{name}" in after, "the release must wait for Redis"
