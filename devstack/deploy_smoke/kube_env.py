"""The environment Kubernetes gives a container from the rendered manifests: ConfigMap and
Secret `envFrom`, explicit `env` with `$(VAR)` expansion, `valueFrom` (ConfigMap and
Secret keys, the downward API's fields and resources, with quantities like 500m or 1Gi)."""

from __future__ import annotations

import base64
import math
import re
from typing import Any

from devstack.deploy import chart
from devstack.deploy_smoke.steps import SmokeFailed
from devstack.procs import LOOPBACK

# What a fieldRef to status.podIP gives: the address the pod's processes listen on here.
POD_IP = LOOPBACK


def find_manifest(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next(iter(chart.find(manifests, kind, name)), None)


def config_map_data(manifests: list[dict[str, Any]], name: str) -> dict[str, str] | None:
    doc = find_manifest(manifests, "ConfigMap", name)
    return None if doc is None else {k: str(v) for k, v in (doc.get("data") or {}).items()}


def secret_data(manifests: list[dict[str, Any]], name: str) -> dict[str, str] | None:
    doc = find_manifest(manifests, "Secret", name)
    if doc is None:
        return None
    data = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    data.update({k: str(v) for k, v in (doc.get("stringData") or {}).items()})
    return data


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, unknown ones kept, $$ is a $."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REF.sub(replace, value)


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def quantity(value: Any) -> float:
    match = _QUANTITY.match(str(value))
    if match is None or match.group(2) not in _SUFFIX:
        raise SmokeFailed(f"cannot read the quantity {value!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def env_from_source(
    item: dict[str, Any], container: dict[str, Any], manifests: list[dict[str, Any]], pod: dict[str, Any]
) -> str | None:
    source = item["valueFrom"]
    for kind, getter in (("configMapKeyRef", config_map_data), ("secretKeyRef", secret_data)):
        if kind in source:
            ref = source[kind]
            data = getter(manifests, ref["name"])
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    return None
                raise SmokeFailed(f"env {item['name']}: {kind} {ref['name']}/{ref['key']} is not rendered by the chart")
            return data[ref["key"]]
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        fields = {
            "metadata.name": pod["name"],
            "metadata.namespace": pod["namespace"],
            "status.podIP": POD_IP,
            "status.hostIP": LOOPBACK,
            "spec.nodeName": "deploy-smoke-node",
            "spec.serviceAccountName": pod.get("serviceAccountName", "default"),
        }
        label = re.fullmatch(r"metadata\.labels\['(.+)'\]", path)
        if label:
            return str(pod["labels"].get(label.group(1), ""))
        if path not in fields:
            raise SmokeFailed(f"env {item['name']}: fieldRef {path} is not supported by deploy-smoke")
        return str(fields[path])
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"]
        kind, resource = ref["resource"].split(".", 1)
        amount = container.get("resources", {}).get(kind, {}).get(resource)
        if amount is None:
            raise SmokeFailed(f"env {item['name']}: {ref['resource']} is not set on the container")
        return str(math.ceil(quantity(amount) / quantity(ref.get("divisor", "1"))))
    raise SmokeFailed(f"env {item['name']}: unsupported valueFrom {sorted(source)}")


def chart_env(container: dict[str, Any], manifests: list[dict[str, Any]], pod: dict[str, Any]) -> dict[str, str]:
    """The variables Kubernetes would set in this container from the rendered manifests."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []) or []:
        prefix = source.get("prefix", "")
        for kind, getter in (("configMapRef", config_map_data), ("secretRef", secret_data)):
            if kind not in source:
                continue
            ref = source[kind]
            data = getter(manifests, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise SmokeFailed(
                    f"container {container['name']}: {kind} {ref['name']!r} is not rendered by the chart "
                    "(an existingSecret? deploy-smoke renders the chart's own Secret)"
                )
            env.update({prefix + key: value for key, value in data.items()})
    for item in container.get("env", []) or []:
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
        elif "valueFrom" in item:
            value = env_from_source(item, container, manifests, pod)
            if value is not None:
                env[item["name"]] = value
        else:
            env[item["name"]] = ""
    return env
