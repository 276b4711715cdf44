"""The continuous delivery audit (beat's `outbox.audit`): the last OUTBOX_AUDIT_WINDOW_MINUTES
of published rows, OUTBOX_AUDIT_BATCH_SIZE rows a run, and what it found for the operations page.

A run takes the rows after a cursor (published_at, id) kept in Redis and audits them
(outbox/audit.py); when it reaches the newest rows the next run starts again at the window's
start. So every row published in the window is read back once per pass, a pass takes
window rows / batch size runs, and a topic truncated or recreated after its rows were
first audited still shows up in a later pass (for as long as the rows are in the window).
The work of a run is bounded by the batch, whatever the traffic.

Its figures and a few findings are kept in Redis (the cache) for the operations page: the
last run's, and the last run that found something (a clean run does not hide it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from kafka.errors import KafkaError

from outbox.audit import AuditResult, rows_after, rows_audit

logger = logging.getLogger(__name__)

CURSOR_KEY = "outbox-audit:cursor"
LAST_KEY = "outbox-audit:last"
LAST_FINDING_KEY = "outbox-audit:last-finding"
REPORT_TTL_SECONDS = 7 * 24 * 3600
FINDINGS_KEPT = 5
# The read-back's deadline: well inside the task's soft time limit (60 s).
READ_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class AuditReport:
    at: datetime
    figures: dict[str, int]
    findings: list[str]  # the first FINDINGS_KEPT findings, described (they name keys: staff with outbox view only)

    @property
    def duplicate_percent(self) -> float | None:
        """Duplicates per hundred rows checked: the at-least-once cost."""
        checked = self.figures.get("checked", 0)
        return self.figures.get("duplicates", 0) / checked * 100 if checked else None


def _cursor_get() -> tuple[datetime, int] | None:
    try:
        value = cache.get(CURSOR_KEY)
    except Exception:  # Redis down: start at the window's start (the audit needs only the database and Kafka)
        logger.warning("Delivery audit: could not read its cursor", exc_info=True)
        return None
    if not value:
        return None
    at, row_id = value
    return datetime.fromisoformat(at), int(row_id)


def _store(values: dict[str, Any]) -> None:
    try:
        cache.set_many(values, timeout=REPORT_TTL_SECONDS)
    except Exception:  # the next run writes again
        logger.warning("Delivery audit: could not store its cursor and report", exc_info=True)


def audit_step(*, now: datetime | None = None, batch_size: int | None = None) -> AuditResult:
    """One run of the continuous audit: the next batch of the window, judged and reported."""
    now = now or timezone.now()
    batch_size = batch_size or settings.OUTBOX_AUDIT_BATCH_SIZE
    since = now - timedelta(minutes=settings.OUTBOX_AUDIT_WINDOW_MINUTES)
    cursor = _cursor_get()
    if cursor is not None and cursor[0] < since:
        cursor = None
    rows = rows_after(since=since, until=now, after=cursor, limit=batch_size)
    try:
        result = rows_audit(rows, timeout=READ_TIMEOUT_SECONDS, now=now)
    except KafkaError as exc:
        # Kafka unreachable: nothing judged, the cursor stays; the relay's metrics and alerts
        # say the broker is down, a traceback a minute here would add nothing.
        logger.warning("Delivery audit: Kafka is not reachable, %d rows not audited: %r", len(rows), exc)
        return AuditResult(unread=len(rows))
    # The newest rows reached: the next run begins the next pass.
    report_store(result, now=now, cursor=(rows[-1].published_at, rows[-1].id) if len(rows) == batch_size else None)
    if rows:
        logger.info("Delivery audit: %s", result.line())
    return result


def report_store(result: AuditResult, *, now: datetime, cursor: tuple[datetime, int] | None) -> None:
    """Keep a run's cursor and report (and, when it found something, its report as the last finding)."""
    report = {
        "at": now.isoformat(),
        "figures": result.figures(),
        "findings": [finding.describe() for finding in result.findings[:FINDINGS_KEPT]],
    }
    values: dict[str, Any] = {
        CURSOR_KEY: [cursor[0].isoformat(), cursor[1]] if cursor is not None else None,
        LAST_KEY: report,
    }
    if not result.clean:
        values[LAST_FINDING_KEY] = report
    _store(values)


def _report(value: Any) -> AuditReport | None:
    if not value:
        return None
    return AuditReport(
        at=datetime.fromisoformat(value["at"]), figures=dict(value["figures"]), findings=list(value["findings"])
    )


def audit_reports() -> tuple[AuditReport | None, AuditReport | None]:
    """The last run's report and the last report with a finding (None: none yet, or Redis is down)."""
    try:
        found = cache.get_many([LAST_KEY, LAST_FINDING_KEY])
    except Exception:
        logger.warning("Delivery audit: could not read its report", exc_info=True)
        return None, None
    return _report(found.get(LAST_KEY)), _report(found.get(LAST_FINDING_KEY))
