"""/admin/operations/: outbox backlog, the outbox's storage and the transaction horizon,
the delivery audit's last findings, lifecycle orders due, the user-event consumer, dead rows
by cause, the keys they block and the newest of them, and the last hour's orders and relayed events.

Staff only (wrapped in admin.site.admin_view: anyone else goes to the admin login).
Every number comes from a bounded, indexed read (orders.selectors, outbox.selectors),
from PostgreSQL's catalogs (outbox.storage, orders_project.xmin_horizon) or from the
consumer's and the delivery audit's own reports in Redis (users_cache.services,
outbox.selectors), so the page costs a handful of short queries however large the tables are.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from orders import selectors as orders_selectors
from orders_project.errors import ServiceUnavailableError
from orders_project.operations.chart import minute_chart, minute_start
from orders_project.xmin_horizon import xmin_horizon_holders
from outbox import selectors as outbox_selectors
from outbox.storage import outbox_storage
from users_cache import services as users_cache

CHART_MINUTES = 60
DEAD_ROWS_SHOWN = 10
DEAD_GROUPS_SHOWN = 5
# The page reloads every 30 s: its groups cover the newest 1,000 dead rows (about 50 ms of
# fingerprints); the admin's page groups up to 10,000.
DEAD_ROWS_GROUPED = 1_000
BLOCKED_KEYS_SHOWN = 5
HORIZON_HOLDERS_SHOWN = 3
# The page reloads itself: it is meant to stay open on a screen.
REFRESH_SECONDS = 30


def duration_text(seconds: float | None) -> str:
    """ "2h 5m 7s", "5m 7s", "7s"; "-" for None."""
    if seconds is None:
        return "-"
    hours, rest = divmod(max(int(seconds), 0), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def operations_view(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    since = minute_start(now) - timedelta(minutes=CHART_MINUTES - 1)
    outbox = outbox_selectors.outbox_health()
    storage = outbox_storage(now=now, retention=timedelta(days=settings.OUTBOX_RETENTION_DAYS))
    oldest_partition = storage.oldest_partition_start
    audit_last, audit_finding = outbox_selectors.outbox_audit_reports()
    # The rows themselves (keys are customer ids, errors may quote payloads) for those who may
    # view the outbox; the counts for every staff member.
    may_view_events = request.user.has_perm("outbox.view_outboxevent")
    try:
        consumer, consumer_error = users_cache.consumer_status_get(), ""
    except ServiceUnavailableError as exc:
        consumer, consumer_error = None, str(exc)
    context = {
        **admin.site.each_context(request),
        "title": "Operations",
        "now": now,
        "refresh_seconds": REFRESH_SECONDS,
        "outbox": outbox,
        "oldest_pending_age": duration_text(
            (now - outbox.oldest_pending_at).total_seconds() if outbox.oldest_pending_at else None
        ),
        "storage": storage,
        "retention_days": settings.OUTBOX_RETENTION_DAYS,
        "oldest_partition_age": duration_text((now - oldest_partition).total_seconds() if oldest_partition else None),
        "horizon_holders": [
            (holder, duration_text((now - holder.xact_start).total_seconds() if holder.xact_start else None))
            for holder in xmin_horizon_holders(limit=HORIZON_HOLDERS_SHOWN)
        ],
        "audit_last": audit_last,
        "audit_last_age": duration_text((now - audit_last.at).total_seconds() if audit_last else None),
        "audit_finding": audit_finding,
        "audit_interval": settings.OUTBOX_AUDIT_INTERVAL_SECONDS,
        "audit_window": settings.OUTBOX_AUDIT_WINDOW_MINUTES,
        "due": orders_selectors.orders_due(now=now),
        "confirm_delay": settings.ORDER_CONFIRM_DELAY,
        "ship_delay": settings.ORDER_SHIP_DELAY,
        "consumer": consumer,
        "consumer_error": consumer_error,
        "consumer_group": settings.KAFKA_CONSUMER_GROUP_ID,
        "last_event_age": duration_text(
            (now - consumer.last_event_at).total_seconds() if consumer and consumer.last_event_at else None
        ),
        "may_view_events": may_view_events,
        "dead_rows": outbox_selectors.outbox_dead_recent(limit=DEAD_ROWS_SHOWN) if may_view_events else [],
        # Both read dead rows only (bounded): nothing when there are none.
        "dead_groups": outbox_selectors.outbox_dead_groups(limit=DEAD_GROUPS_SHOWN, read=DEAD_ROWS_GROUPED)
        if may_view_events and outbox.dead
        else None,
        "blocked_keys": outbox_selectors.outbox_blocked_keys(limit=BLOCKED_KEYS_SHOWN)
        if may_view_events and outbox.dead
        else None,
        "charts": [
            minute_chart(
                title="Orders created per minute",
                counts=orders_selectors.orders_created_per_minute(since=since),
                end=now,
                minutes=CHART_MINUTES,
            ),
            minute_chart(
                title="Events relayed to Kafka per minute",
                counts=outbox_selectors.outbox_published_per_minute(since=since),
                end=now,
                minutes=CHART_MINUTES,
            ),
        ],
    }
    return TemplateResponse(request, "admin/operations.html", context)
