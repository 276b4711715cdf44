"""Staff view of the outbox: read-only rows, with requeue/discard for dead ones
and the pending and dead counts in the page title."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from outbox import services
from outbox.models import OutboxEvent, OutboxStatus


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ["id", "event_type", "topic", "key", "status", "attempts", "age", "short_error", "published_at"]
    list_filter = ["status", "topic", "event_type"]
    search_fields = ["event_id", "key"]
    readonly_fields = [field.name for field in OutboxEvent._meta.fields]
    actions = ["requeue", "discard"]

    @admin.display(description="age")
    def age(self, obj: OutboxEvent) -> str:
        seconds = int((timezone.now() - obj.created_at).total_seconds())
        return f"{seconds // 3600}h {seconds % 3600 // 60}m {seconds % 60}s"

    @admin.display(description="last error")
    def short_error(self, obj: OutboxEvent) -> str:
        return obj.last_error[:80]

    @admin.action(description="Requeue selected dead events", permissions=["change"])
    def requeue(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        count = services.event_requeue(event_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Requeued {count} dead events (others were not dead).", messages.SUCCESS)

    @admin.action(description="Discard (delete) selected dead events", permissions=["change"])
    def discard(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        count = services.event_discard(event_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Discarded {count} dead events (others were not dead).", messages.WARNING)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        counts = OutboxEvent.objects.aggregate(
            pending=Count("id", filter=Q(status=OutboxStatus.PENDING)),
            dead=Count("id", filter=Q(status=OutboxStatus.DEAD)),
        )
        title = f"Outbox events: {counts['pending']} pending, {counts['dead']} dead"
        return super().changelist_view(request, {**(extra_context or {}), "title": title})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The rows themselves are never edited; "change" only unlocks the actions.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
