"""/api/asyncapi.yaml and /api/asyncapi.json: the event contract, public like /api/schema/."""

import json
from functools import cache

import yaml
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from orders_project.contract import asyncapi_document


class _NoAliasDumper(yaml.SafeDumper):
    """No anchors or aliases in the output: every YAML reader gets the same tree as the JSON one."""

    def ignore_aliases(self, data: object) -> bool:
        return True


@cache
def _rendered(fmt: str) -> bytes:
    document = asyncapi_document()
    if fmt == "json":
        return json.dumps(document, indent=2).encode()
    return yaml.dump(document, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True).encode()


@require_safe
def asyncapi_yaml(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_rendered("yaml"), content_type="application/yaml; charset=utf-8")


@require_safe
def asyncapi_json(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_rendered("json"), content_type="application/json")
