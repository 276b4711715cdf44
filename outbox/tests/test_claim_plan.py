"""A claim reads rows in proportion to its batch, never to the backlog waiting: counted in
the plan PostgreSQL ran (EXPLAIN ANALYZE of the relay's statement), not timed."""

import json
import uuid
from typing import Any

import pytest
from django.db import connection

from outbox.claim import SCAN_ROWS_PER_BATCH, WINDOW_CLAIM_SQL, claim_params
from outbox.models import OutboxStatus

pytestmark = pytest.mark.django_db

BATCH = 10
SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan"}

# A backlog as an outage leaves it: pending rows in today's partition, a few keys with many rows each.
_BACKLOG = """
INSERT INTO outbox_outboxevent (event_id, event_type, topic, key, payload, headers, status, attempts,
    next_attempt_at, last_error, created_at)
SELECT gen_random_uuid(), 'order.created', 'orders', 'key-' || (n %% %s), '{}', '{}', %s, 0, now(), '', now()
FROM generate_series(1, %s) AS n
"""


def _scans(node: dict[str, Any]) -> list[tuple[str, str, int]]:
    """Every scan of the plan: (node type, relation, rows it returned over all its loops)."""
    found = []
    if node["Node Type"] in SCANS:
        found.append((node["Node Type"], node.get("Relation Name", ""), node["Actual Rows"] * node["Actual Loops"]))
    for child in node.get("Plans", []):
        found += _scans(child)
    return found


def test_a_claim_reads_its_window_however_long_the_backlog():
    # given 4,000 pending rows over 4 keys, analyzed (as autovacuum leaves a table after a burst)
    with connection.cursor() as cursor:
        cursor.execute(_BACKLOG, [4, OutboxStatus.PENDING, 4000])
        cursor.execute("ANALYZE outbox_outboxevent")

        # when a relay claims a batch
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + WINDOW_CLAIM_SQL, claim_params(BATCH, uuid.uuid4()))
        (plan,) = cursor.fetchone()
    plan = plan if isinstance(plan, list) else json.loads(plan)

    # then it leased heads and no scan of the outbox returned more rows than the window it may look at
    scans = _scans(plan[0]["Plan"])
    assert any(relation.startswith("outbox_outboxevent") for _, relation, _ in scans)
    assert [s for s in scans if s[2] > BATCH * SCAN_ROWS_PER_BATCH] == []
