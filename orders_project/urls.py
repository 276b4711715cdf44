from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

# /api/v1/health/live and /ready are answered by orders_project.health.HealthCheckMiddleware
# before URL routing (probes must pass whatever their Host header).
urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("orders.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api-auth/", include("rest_framework.urls")),
    path("", include("django_prometheus.urls")),
]

# Errors outside DRF (admin, login pages, unknown paths) answer in the API's one shape too.
handler400 = "orders_project.api.errors.bad_request_view"
handler403 = "orders_project.api.errors.permission_denied_view"
handler404 = "orders_project.api.errors.not_found_view"
handler500 = "orders_project.api.errors.server_error_view"
