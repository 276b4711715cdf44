"""Render, lint and validate charts/order-service offline, without a helm binary.

helm-python-sdk (import name `helm_python`) binds Helm's Go SDK, so rendering
here is what `helm template` does: the chart's defaults coalesced with the
given values, values.schema.json checked, templates (hooks included) rendered.
Used by tests/deploy and by `make deploy-check` / `make deploy-smoke` / `make chaos`
(devstack/deploy_check.py imports `render` and `lint`).

    from devstack.deploy.chart import chart_render, chart_lint, DEFAULT_VALUES_FILE
    manifests = chart_render([DEFAULT_VALUES_FILE], {"beat.replicas": 1})
    problems = chart_lint([DEFAULT_VALUES_FILE])          # [] when clean
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate  # type: ignore[import-untyped]  # ships no type information
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "order-service"
# The least a deployer adds to the defaults (image tag, server addresses, secret key).
# The production example is not a file: it is what Terraform passes
# (devstack/deploy/terraform_values.py production_values).
DEFAULT_VALUES_FILE = CHART_DIR / "ci" / "default-values.yaml"

RELEASE_NAME = "order-service"
NAMESPACE = "orders"
# The stack's floor (Chart.yaml kubeVersion: Strimzi 1.2 needs 1.30) and the newest
# minor kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30", "1.33")

# The ONE place listing kinds that are not schema-validated: custom resources of the
# Prometheus Operator, whose CRD schemas kubernetes-validate does not ship and which
# are too large to vendor faithfully here. tests/deploy/test_chart_production.py checks their fields.
NOT_VALIDATED_KINDS: dict[tuple[str, str], str] = {
    ("monitoring.coreos.com/v1", "PodMonitor"): "prometheus-operator CRD, not in kubernetes-validate",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheus-operator CRD, not in kubernetes-validate",
}

Manifest = dict[str, Any]


class ChartError(Exception):
    """The chart refused the values (schema or a template `fail`) or failed to render; the message says why."""


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` deep-merged over `base`, like several `-f` files: maps merge, anything else
    (lists, scalars, None) replaces. None is kept: Helm then drops that key from the defaults."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def chart_values(values_files: Iterable[Path] = (), set_values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The user values of `-f FILE ... --set PATH=VALUE ...`, without the chart's defaults.

    `set_values` maps dotted paths to typed values ({"beat.replicas": 2}); a value that
    is a dict is merged at that path (use it for keys that contain dots)."""
    values: dict[str, Any] = {}
    for path in values_files:
        values = merge_values(values, yaml.safe_load(Path(path).read_text()) or {})
    for dotted, value in (set_values or {}).items():
        nested: Any = value
        for part in reversed(dotted.split(".")):
            nested = {part: nested}
        values = merge_values(values, nested)
    return values


def _rendered(values: Mapping[str, Any], release: str, namespace: str, is_upgrade: bool) -> dict[str, str]:
    with helm_python.Chart.load(CHART_DIR) as chart:
        try:
            return chart.render(
                values=dict(values),
                name=release,
                namespace=namespace,
                is_install=not is_upgrade,
                is_upgrade=is_upgrade,
            )
        except helm_python.HelmError as exc:
            raise ChartError(str(exc)) from exc


def render(
    values: Mapping[str, Any], *, release: str = RELEASE_NAME, namespace: str = NAMESPACE, is_upgrade: bool = False
) -> list[Manifest]:
    """Every manifest the chart renders for these user values (hooks included), parsed.

    Raises ChartError when the schema or a template `fail` refuses the values."""
    manifests: list[Manifest] = []
    for template, text in sorted(_rendered(values, release, namespace, is_upgrade).items()):
        if template.endswith("NOTES.txt"):
            continue
        manifests += [doc for doc in yaml.safe_load_all(text) if doc]
    return manifests


def notes(values: Mapping[str, Any], *, release: str = RELEASE_NAME, namespace: str = NAMESPACE) -> str:
    """The rendered NOTES.txt (what `helm install` prints)."""
    rendered = _rendered(values, release, namespace, is_upgrade=False)
    return next((text for template, text in rendered.items() if template.endswith("NOTES.txt")), "")


def lint(values: Mapping[str, Any], *, namespace: str = NAMESPACE) -> list[str]:
    """`helm lint --strict` findings of warning level and above, as "path: message"; [] when clean.

    Lint checks the schema and the YAML, but a template `fail` only gets logged in
    Helm's lint mode: `render` is what enforces the chart's cross-field rules."""
    report = helm_python.lint(
        CHART_DIR, dict(values), strict=True, namespace=namespace, kube_version=f"v{KUBERNETES_VERSIONS[-1]}.0"
    )
    findings = [
        f"{message['path']}: {message['error'].strip()}" for message in report["messages"] if message["severity"] >= 2
    ]
    # "errors" repeats the findings in other words; alone it means lint itself could not run.
    return findings or [str(error).strip() for error in report.get("errors") or []]


def chart_render(
    values_files: Iterable[Path] = (), set_values: Mapping[str, Any] | None = None, **options: Any
) -> list[Manifest]:
    """`helm template` with `-f` files and `--set` paths; options as for `render`."""
    return render(chart_values(values_files, set_values), **options)


def chart_lint(values_files: Iterable[Path] = (), set_values: Mapping[str, Any] | None = None) -> list[str]:
    """`helm lint --strict` with `-f` files and `--set` paths; [] when clean."""
    return lint(chart_values(values_files, set_values))


def validate_manifests(manifests: Iterable[Manifest], kube_version: str = KUBERNETES_VERSIONS[-1]) -> list[str]:
    """kubernetes-validate (strict: unknown fields are errors) for each manifest, as
    "Kind/name: path: message"; kinds in NOT_VALIDATED_KINDS are skipped; [] when all pass."""
    problems: list[str] = []
    for doc in manifests:
        if (doc.get("apiVersion"), doc.get("kind")) in NOT_VALIDATED_KINDS:
            continue
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path) or "(top)"
            problems.append(f"{name}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{name}: {exc.message}")
    return problems


def find(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """The manifests of this kind (and name, if given)."""
    return [
        doc
        for doc in manifests
        if doc.get("kind") == kind and (name is None or doc.get("metadata", {}).get("name") == name)
    ]


def resource_name(doc: Manifest) -> str:
    """Kind/name, as messages name a resource."""
    return f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"


def containers(manifest: Manifest) -> list[Manifest]:
    """Init and regular containers of a Deployment or Job."""
    pod = manifest["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]
