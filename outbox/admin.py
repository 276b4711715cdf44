"""Staff view of the outbox: read-only rows, with requeue (change permission) and
discard (delete permission) for dead ones, and the pending and dead counts in
the page title; dead rows by cause and the keys they block on pages of their own
(outbox/admin_dead.py). List pages stay cheap with millions of published rows: counts
are bounded and use the status indexes, filter choices come from settings."""

from functools import partial
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, DELETION
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone

from orders_project.admin_lookups import SafeLookupsAdmin
from orders_project.counting import BoundedCountPaginator, count_bounded
from outbox import services
from outbox.admin_dead import blocked_keys_view, dead_groups_view, dead_rows_log
from outbox.claim import OUTBOX_TABLE
from outbox.fingerprint import group_id_expression
from outbox.models import OutboxEvent, OutboxStatus


class _SettingsChoicesFilter(admin.SimpleListFilter):
    """Choices from settings.KAFKA_TOPICS, not a SELECT DISTINCT over the whole table."""

    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = settings.KAFKA_TOPICS.values() if self.field == "topic" else settings.KAFKA_TOPICS.keys()
        return [(name, name) for name in sorted(set(names))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class TopicFilter(_SettingsChoicesFilter):
    title = parameter_name = field = "topic"


class EventTypeFilter(_SettingsChoicesFilter):
    title = "event type"
    parameter_name = field = "event_type"


class DeadGroupFilter(admin.SimpleListFilter):
    """The dead rows of one cause (`?dead_group=<md5>`, linked from the dead-rows-by-cause page).
    No choices of its own: listing them would group every dead row on every changelist view."""

    title = "dead rows of one cause"
    parameter_name = "dead_group"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, f"cause {value[:8]}")] if value else []

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if not self.value():
            return queryset
        return (
            queryset.filter(status=OutboxStatus.DEAD)
            .annotate(dead_group=group_id_expression(OUTBOX_TABLE))
            .filter(dead_group=self.value())
        )


@admin.register(OutboxEvent)
class OutboxEventAdmin(SafeLookupsAdmin):
    list_display = [
        "id",
        "event_type",
        "topic",
        "key",
        "status",
        "attempts",
        "age",
        "short_error",
        "published_at",
        "delivered_to",
    ]
    list_filter = ["status", TopicFilter, EventTypeFilter, DeadGroupFilter]
    search_fields = ["event_id", "key"]
    readonly_fields = [*(field.name for field in OutboxEvent._meta.fields), "delivered_to"]
    actions = ["requeue", "discard"]
    paginator = BoundedCountPaginator
    show_full_result_count = False  # it would COUNT(*) the whole table on every filtered view
    show_facets = admin.ShowFacets.NEVER  # "Show counts" would COUNT each filter choice over the whole table
    change_list_template = "admin/outbox/outboxevent/change_list.html"  # links to the dead-row pages

    def get_urls(self) -> list[URLPattern]:
        # Before the model's own URLs: "<path:object_id>/" would take these paths.
        view = self.admin_site.admin_view
        return [
            path("dead-groups/", view(partial(dead_groups_view, self)), name="outbox_outboxevent_dead_groups"),
            path("blocked-keys/", view(partial(blocked_keys_view, self)), name="outbox_outboxevent_blocked_keys"),
            *super().get_urls(),
        ]

    @admin.display(description="age")
    def age(self, obj: OutboxEvent) -> str:
        seconds = int((timezone.now() - obj.created_at).total_seconds())
        return f"{seconds // 3600}h {seconds % 3600 // 60}m {seconds % 60}s"

    @admin.display(description="delivered to")
    def delivered_to(self, obj: OutboxEvent) -> str:
        return obj.delivery  # "order.created [2] @ 18,443"; "unknown" if published before it was recorded

    @admin.display(description="last error")
    def short_error(self, obj: OutboxEvent) -> str:
        return obj.last_error[:80]

    @admin.action(description="Requeue selected dead events", permissions=["change"])
    def requeue(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        with transaction.atomic():
            rows = services.event_requeue(event_ids=list(queryset.values_list("id", flat=True)))
            dead_rows_log(request, rows, CHANGE, "Requeued (a dead row chosen in the list).")
        self.message_user(request, f"Requeued {len(rows)} dead events (others were not dead).", messages.SUCCESS)

    @admin.action(description="Discard (delete) selected dead events", permissions=["discard"])
    def discard(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        with transaction.atomic():
            rows = services.event_discard(event_ids=list(queryset.values_list("id", flat=True)))
            dead_rows_log(request, rows, DELETION, "Discarded (a dead row chosen in the list).")
        self.message_user(request, f"Discarded {len(rows)} dead events (others were not dead).", messages.WARNING)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # One bounded count per status through its index, not a pass over every published row.
        pending = count_bounded(OutboxEvent.objects.filter(status=OutboxStatus.PENDING))
        dead = count_bounded(OutboxEvent.objects.filter(status=OutboxStatus.DEAD))
        title = f"Outbox events: {pending} pending, {dead} dead"
        return super().changelist_view(request, {**(extra_context or {}), "title": title})

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The rows themselves are never edited; "change" only unlocks the actions.
        return obj is None and super().has_change_permission(request, obj)

    def has_discard_permission(self, request: HttpRequest) -> bool:
        # Discarding deletes rows that were never sent: it asks for the delete permission.
        return bool(request.user.has_perm("outbox.delete_outboxevent"))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # no delete page: dead rows go through the discard action, others never
