from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django_prometheus.exports import ExportToDjangoView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from orders_project.contract.views import asyncapi_json, asyncapi_yaml
from orders_project.operations.views import operations_view

# /api/v1/health/live and /ready are answered by orders_project.health.HealthCheckMiddleware
# before URL routing (probes must pass whatever their Host header).
urlpatterns = [
    # Before admin/ (which would answer it as an unknown app). admin_view: staff only,
    # anyone else goes to the admin login.
    path("admin/operations/", admin.site.admin_view(operations_view), name="admin-operations"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("orders.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The event contract (AsyncAPI 3), public like the OpenAPI schema.
    path("api/asyncapi.yaml", asyncapi_yaml, name="asyncapi-yaml"),
    path("api/asyncapi.json", asyncapi_json, name="asyncapi-json"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api-auth/", include("rest_framework.urls")),
]

# /metrics is not served on this (public) port: every process kind serves it on
# METRICS_PORT (orders_project/metrics.py). Under `make dev` (runserver, DEBUG, one
# process) the web's own metrics are also here, for a look in the browser.
if settings.DEBUG:
    urlpatterns.append(path("metrics", ExportToDjangoView, name="prometheus-django-metrics"))

# Errors outside DRF (admin, login pages, unknown paths) answer in the API's one shape too.
handler400 = "orders_project.api.errors.bad_request_view"
handler403 = "orders_project.api.errors.permission_denied_view"
handler404 = "orders_project.api.errors.not_found_view"
handler500 = "orders_project.api.errors.server_error_view"
