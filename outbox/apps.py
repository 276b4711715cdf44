import contextlib

from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from outbox.metrics import OutboxCollector

        # ready() may run twice in one process (some test runners): register once.
        with contextlib.suppress(ValueError):
            REGISTRY.register(OutboxCollector())
