"""The outbox admin's pages for dead rows: their groups by cause, with requeue and discard of a
whole group, and the keys they block. Same permissions as the row actions (requeue: change;
discard: delete); every row an action changes, a group's or the chosen rows', gets its admin
log entry (LogEntry, dead_rows_log), in the action's transaction."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from outbox import selectors, services
from outbox.dead_rows import DEAD_ROWS_READ, GROUP_ACTION_LIMIT, WAITING_COUNTED
from outbox.models import OutboxEvent

GROUPS_SHOWN = 100
KEYS_SHOWN = 100
_GROUP_ID = re.compile(r"^[0-9a-f]{32}$")


def dead_rows_log(request: HttpRequest, rows: list[OutboxEvent], action_flag: int, message: str) -> None:
    """One admin log entry per row a staff action changed (CHANGE: requeued, DELETION: discarded)."""
    LogEntry.objects.log_actions(
        user_id=str(request.user.pk), queryset=rows, action_flag=action_flag, change_message=message
    )


def _context(model_admin: ModelAdmin[Any], request: HttpRequest, title: str) -> dict[str, Any]:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title,
        "now": timezone.now(),
        "dead_rows_read": DEAD_ROWS_READ,
    }


def dead_groups_view(model_admin: ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    if request.method == "POST":
        return _group_action(model_admin, request)
    context = {
        **_context(model_admin, request, "Dead outbox rows by cause"),
        "dead": selectors.outbox_dead_groups(limit=GROUPS_SHOWN),
        "may_requeue": model_admin.has_change_permission(request),
        "may_discard": request.user.has_perm("outbox.delete_outboxevent"),
        "group_action_limit": GROUP_ACTION_LIMIT,
    }
    return TemplateResponse(request, "admin/outbox/outboxevent/dead_groups.html", context)


def _group_action(model_admin: ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    action, group_id = request.POST.get("action", ""), request.POST.get("group", "")
    if action not in ("requeue", "discard") or not _GROUP_ID.match(group_id):
        return HttpResponseBadRequest("Expected action=requeue|discard and group=<32 hex digits>.")
    if action == "requeue" and not model_admin.has_change_permission(request):
        raise PermissionDenied
    if action == "discard" and not request.user.has_perm("outbox.delete_outboxevent"):
        raise PermissionDenied
    if action == "discard" and request.POST.get("confirm") != "yes":
        group = selectors.outbox_dead_group(group_id=group_id)
        context = {**_context(model_admin, request, "Discard a group of dead outbox rows?"), "group": group}
        return TemplateResponse(request, "admin/outbox/outboxevent/dead_group_discard.html", context)
    with transaction.atomic():
        if action == "requeue":
            done = services.dead_group_requeue(group_id=group_id)
            flag, verb, level = CHANGE, "Requeued", messages.SUCCESS
        else:
            done = services.dead_group_discard(group_id=group_id)
            flag, verb, level = DELETION, "Discarded", messages.WARNING
        dead_rows_log(request, done.rows, flag, f"{verb} with its group of dead rows {group_id} (same cause).")
    if not done.rows:
        model_admin.message_user(request, "No dead rows in that group (already requeued or discarded?).", messages.INFO)
    else:
        rest = f" {done.remaining} more remain: run it again." if done.remaining else ""
        text = f"{verb} {len(done.rows)} dead events of group {group_id[:8]}.{rest}"
        model_admin.message_user(request, text, level)
    return HttpResponseRedirect(reverse("admin:outbox_outboxevent_dead_groups"))


def blocked_keys_view(model_admin: ModelAdmin[Any], request: HttpRequest) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    context = {
        **_context(model_admin, request, "Keys blocked by a dead outbox row"),
        "blocked": selectors.outbox_blocked_keys(limit=KEYS_SHOWN),
        "waiting_counted": WAITING_COUNTED,
    }
    return TemplateResponse(request, "admin/outbox/outboxevent/blocked_keys.html", context)
