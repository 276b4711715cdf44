from django.apps import AppConfig


class OutboxConfig(AppConfig):
    # The outbox gauges are served by the worker only (orders_project/celery_metrics.py),
    # not registered here: every web process would otherwise query at each scrape.
    name = "outbox"
    default_auto_field = "django.db.models.BigAutoField"
