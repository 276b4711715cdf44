"""Who may reach the web port and set X-Forwarded-*, and egress the chart does not know:
the chart's NetworkPolicy and its rules, and what Terraform's example gives it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack.deploy.chart import (
    DEFAULT_VALUES_FILE,
    ChartError,
    Manifest,
    chart_render,
    chart_values,
    find,
    merge_values,
    render,
    validate_manifests,
)
from devstack.deploy.expressions import evaluate
from devstack.deploy.terraform import EXAMPLE_TFVARS, hcl_load, module_with_tfvars, terraform_module
from devstack.deploy.terraform_console import terraform_locals
from devstack.deploy.terraform_values import production_values
from tests.support.terraform import needs_terraform

INGRESS_NGINX = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
TRUST_ANY_PROXY = {"config": {"FORWARDED_ALLOW_IPS": "*"}}


def with_policy(ingress_from: list[dict[str, Any]], enabled: bool = True) -> dict[str, Any]:
    values = chart_values([DEFAULT_VALUES_FILE])
    return merge_values(values, {**TRUST_ANY_PROXY, "networkPolicy": {"enabled": enabled, "ingressFrom": ingress_from}})


@pytest.mark.parametrize(
    "ingress_from, enabled",
    [
        ([], False),  # no policy: every pod and address reaches the web port
        ([], True),  # a policy with no source: the same
        ([INGRESS_NGINX], False),  # a source, but the policy is not rendered
        ([{"namespaceSelector": {}}], True),  # every namespace
        ([INGRESS_NGINX, {"ipBlock": {"cidr": "0.0.0.0/0"}}], True),  # and every address
    ],
    ids=["no-policy", "no-source", "policy-off", "all-namespaces", "any-address"],
)
def test_trusting_any_proxy_is_refused_unless_the_policy_names_the_source(
    ingress_from: list[dict[str, Any]], enabled: bool
) -> None:
    with pytest.raises(ChartError, match=r"FORWARDED_ALLOW_IPS is \\?\"\*\\?\".*networkPolicy.ingressFrom"):
        render(with_policy(ingress_from, enabled))


def test_trusting_any_proxy_renders_when_only_the_ingress_controller_reaches_the_web_port() -> None:
    manifests = render(with_policy([INGRESS_NGINX]))
    web = find(manifests, "NetworkPolicy", "order-service-web")[0]["spec"]
    assert web["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}], "from": [INGRESS_NGINX]}]
    # Addresses rather than "*" need no policy: the proxies are named.
    assert chart_render([DEFAULT_VALUES_FILE], {"config.FORWARDED_ALLOW_IPS": "10.0.0.0/8"})


def test_extra_egress_is_added_to_the_release_wide_policy_as_written() -> None:
    collector = {
        "ports": [{"port": 4317, "protocol": "TCP"}],
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}],
    }
    node_local_dns = {
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "169.254.20.10/32"}}],
    }
    manifests = chart_render(
        [DEFAULT_VALUES_FILE], {"networkPolicy.enabled": True, "networkPolicy.extraEgress": [collector, node_local_dns]}
    )
    everyone = find(manifests, "NetworkPolicy", "order-service")[0]["spec"]
    assert everyone["egress"][4:] == [collector, node_local_dns]
    assert [rule["ports"][0]["port"] for rule in everyone["egress"][:4]] == [53, 5432, 6379, 9092]
    assert validate_manifests(manifests) == []


def test_terraforms_dns_rule_reaches_a_nodelocal_dns_cache(production_manifests: list[Manifest]) -> None:
    # NodeLocal DNSCache answers on a link-local address of the node (169.254.20.10), not
    # from a kube-dns pod: a DNS rule narrowed to kube-dns pods would drop every lookup.
    everyone = find(production_manifests, "NetworkPolicy", "order-service")[0]["spec"]
    (dns,) = [rule for rule in everyone["egress"] if {port["port"] for port in rule["ports"]} == {53}]
    assert dns.get("to", []) == []  # any address, port 53 only


def test_extra_egress_refuses_what_is_not_an_egress_rule() -> None:
    with pytest.raises(ChartError, match="extraEgress"):
        chart_render([DEFAULT_VALUES_FILE], {"networkPolicy.extraEgress": [{"port": 4317}]})


@needs_terraform
def test_terraform_names_the_ingress_controller_as_the_only_source_in_the_example() -> None:
    assert terraform_module().locals["app_values"]["networkPolicy"]["ingressFrom"] == "${local.app_ingress_from}"
    example = hcl_load(EXAMPLE_TFVARS)
    assert example["app_extra_config"]["FORWARDED_ALLOW_IPS"] == "*"
    ingress_from = terraform_locals(["app_ingress_from"], var_file=EXAMPLE_TFVARS)["app_ingress_from"]
    assert ingress_from == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"}
            },
        }
    ]
    # the evaluator the chart is checked with (production_values) agrees with Terraform
    assert production_values()["networkPolicy"]["ingressFrom"] == ingress_from
    # What the release would render with the example's settings: accepted, one source.
    values = merge_values(
        chart_values([DEFAULT_VALUES_FILE]),
        {"config": example["app_extra_config"], "networkPolicy": {"enabled": True, "ingressFrom": ingress_from}},
    )
    web = find(render(values), "NetworkPolicy", "order-service-web")[0]["spec"]
    assert web["ingress"][0]["from"] == ingress_from


@needs_terraform
def test_without_an_ingress_controller_terraform_passes_no_source_and_the_chart_refuses_any_proxy(
    tmp_path: Path,
) -> None:
    # The proxies named by address instead (app_num_proxies defaults to 1, which needs them).
    tfvars = tmp_path / "no-controller.tfvars"
    # A development profile: production would also want backups, which are not this test's subject.
    tfvars.write_text('app_extra_config = { FORWARDED_ALLOW_IPS = "10.0.0.0/8" }\ndeployment_profile = "development"\n')

    assert terraform_locals(["app_ingress_from"], var_file=tfvars) == {"app_ingress_from": []}
    assert evaluate("${local.app_ingress_from}", module_with_tfvars(tfvars)) == []
    with pytest.raises(ChartError, match="FORWARDED_ALLOW_IPS"):
        render(with_policy([]))


def test_the_migrate_hook_runs_under_this_releases_egress_not_the_previous_ones() -> None:
    """Helm runs pre-upgrade hooks before it updates the release's policies: the Job
    needs a policy of its own, made as a hook just before it."""
    collector = {"ports": [{"port": 4317, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "10.9.0.0/16"}}]}
    manifests = chart_render(
        [DEFAULT_VALUES_FILE], {"networkPolicy.enabled": True, "networkPolicy.extraEgress": [collector]}
    )
    everyone = find(manifests, "NetworkPolicy", "order-service")[0]
    hook = find(manifests, "NetworkPolicy", "order-service-migrate")[0]
    job = find(manifests, "Job", "order-service-migrate")[0]
    hook_annotations = hook["metadata"]["annotations"]

    assert (
        hook_annotations["helm.sh/hook"] == job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    )
    assert int(hook_annotations["helm.sh/hook-weight"]) < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert hook_annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    # it selects the Job's pods, and only them
    selector = hook["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    assert selector["app.kubernetes.io/component"] == "migrate"
    assert hook["spec"]["egress"] == everyone["spec"]["egress"]
    assert hook["spec"]["egress"][-1] == collector
    assert hook["spec"]["ingress"] == []
    assert "helm.sh/hook" not in everyone["metadata"].get("annotations", {})


def test_no_migrate_hook_policy_without_migrations_or_policies() -> None:
    assert (
        find(
            chart_render([DEFAULT_VALUES_FILE], {"networkPolicy.enabled": True, "migrations.enabled": False}),
            "NetworkPolicy",
            "order-service-migrate",
        )
        == []
    )
    assert find(chart_render([DEFAULT_VALUES_FILE]), "NetworkPolicy") == []
