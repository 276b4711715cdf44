"""django-prometheus's request middleware, with each metric's labelled child looked up once.

The same metrics, labels and values as django_prometheus.middleware (the dashboards'
and alerts' `django_http_*`, docs/observability.md). Its After middleware calls
`metric.labels(...)` about eight times a request, and each call takes the metric's
lock and rebuilds the label tuple: ~7 % of an API create's CPU went to the two
middlewares. A labelled child never changes once made (prometheus_client keeps it
for the process's life), so the child is kept here by metric and label values; the
set of children is the one prometheus_client already holds, so this grows no further.
"""

from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django_prometheus.middleware import PrometheusAfterMiddleware, PrometheusBeforeMiddleware


class HttpMetricsBeforeMiddleware(PrometheusBeforeMiddleware):
    """django-prometheus's, unchanged (it has no labelled metric): named here beside its pair."""


class HttpMetricsAfterMiddleware(PrometheusAfterMiddleware):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._children: dict[tuple[Any, ...], Any] = {}

    def label_metric(
        self, metric: Any, request: HttpRequest, response: HttpResponseBase | None = None, **labels: str
    ) -> Any:
        if not labels:
            return metric
        key = (id(metric), *labels.items())
        child = self._children.get(key)
        if child is None:
            # Several threads may get here for one key: labels() gives them the same child.
            child = self._children[key] = metric.labels(**labels)
        return child
