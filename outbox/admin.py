"""Staff view of the outbox: read-only, filterable by status and topic."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from outbox.models import OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ["id", "event_type", "topic", "key", "status", "attempts", "created_at", "published_at"]
    list_filter = ["status", "topic", "event_type"]
    search_fields = ["event_id", "key"]
    readonly_fields = [field.name for field in OutboxEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
