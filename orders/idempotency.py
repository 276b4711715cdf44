"""Idempotency-Key handling for order creation: `idempotent` runs a create at most once per key.

The key's row is written by the order's own transaction, as its last statement,
with the response to replay: the key exists exactly when the order does. A
create cut short by anything (a database outage, a crash, a refused body)
leaves nothing behind, so a retry with the same key simply runs again; nothing
has to be released, which an outage would prevent.

Before the work, the key is looked up (no lock): a stored response is replayed
(or 422 for another body). Two requests with one key that both find nothing
both do the work; the second one's INSERT of the key waits for the first
transaction's commit on the unique index, finds the key taken, rolls its own
order back and replays the first one's response: one key, one order.

Rows IN_PROGRESS were written by releases that claimed the key in a separate
transaction first; while such a claim is younger than
IDEMPOTENCY_STALE_CLAIM_SECONDS it is answered 409, after that it is taken over.
"""

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.db.models.functions import Now
from django.utils import timezone

from orders.models import IdempotencyKey, IdempotencyKeyStatus
from orders_project.errors import ConflictError, DomainError

KEY_LIFETIME = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255
# Printable ASCII: PostgreSQL refuses NUL in text, and control characters in a key
# are a client bug (or an attack on logs), never a real key.
KEY_PATTERN = re.compile(r"[\x20-\x7e]+")
# Times a request looks its key up: once, and again after each loss of the key to a concurrent
# request whose row then vanished (a race, not a loop to wait in).
_KEY_LOOKUPS = 3


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"


class IdempotencyKeyInProgress(ConflictError):
    code = "idempotency_key_in_progress"


_IN_PROGRESS = "A request with this Idempotency-Key is still being processed; retry later."


class IdempotencyKeyTaken(Exception):
    """Another request stored a response under the key first: roll back, then look it up again."""


@dataclass(frozen=True)
class IdempotentRequest:
    """A create sent with an Idempotency-Key: whose key, and the body it was sent with."""

    client_id: int
    key: str
    fingerprint: str


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    location: str


def _stale_claim_after() -> dt.timedelta:
    # An IN_PROGRESS claim (older releases) this old belongs to a request that died.
    return dt.timedelta(seconds=settings.IDEMPOTENCY_STALE_CLAIM_SECONDS)


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_lookup(*, request: IdempotentRequest) -> StoredResponse | None:
    """The response stored under the request's key, or None when the work is to be done.

    Raises IdempotencyKeyReused (the key was used with another body) or
    IdempotencyKeyInProgress (a live claim of an older release).
    """
    # Ages on the database's clock, the one idempotency_store decides by: a host clock off by
    # seconds must not call a key expired here that the store then finds alive.
    record = (
        IdempotencyKey.objects.filter(client_id=request.client_id, key=request.key)
        .annotate(
            expired=ExpressionWrapper(Q(created_at__lt=Now() - KEY_LIFETIME), output_field=BooleanField()),
            stale=ExpressionWrapper(Q(created_at__lt=Now() - _stale_claim_after()), output_field=BooleanField()),
        )
        .first()
    )
    if record is None or record.expired:
        return None  # an expired key is replaced by idempotency_store
    if record.status == IdempotencyKeyStatus.IN_PROGRESS:
        if record.stale:
            return None
        raise IdempotencyKeyInProgress(_IN_PROGRESS)
    if record.request_fingerprint != request.fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request body.")
    assert record.response_status is not None
    return StoredResponse(status=record.response_status, body=record.response_body, location=record.response_location)


# Inserts the key with its response; an existing row is replaced only when it is expired or
# an abandoned IN_PROGRESS claim. Times are the database's. On a conflict PostgreSQL first
# waits for a concurrent inserter of the same key to commit or roll back.
_STORE_SQL = f"""
INSERT INTO {IdempotencyKey._meta.db_table} AS k
    (client_id, key, request_fingerprint, status, response_status, response_body, response_location, created_at)
VALUES (%(client_id)s, %(key)s, %(fingerprint)s, %(completed)s, %(status)s, %(body)s::jsonb, %(location)s, now())
ON CONFLICT (client_id, key) DO UPDATE SET
    request_fingerprint = EXCLUDED.request_fingerprint, status = EXCLUDED.status,
    response_status = EXCLUDED.response_status, response_body = EXCLUDED.response_body,
    response_location = EXCLUDED.response_location, created_at = EXCLUDED.created_at
WHERE k.created_at < now() - %(lifetime)s
   OR (k.status = %(in_progress)s AND k.created_at < now() - %(stale)s)
RETURNING 1
"""


def idempotency_store(*, request: IdempotentRequest, response: StoredResponse) -> None:
    """Store the response under the key; call inside the transaction that did the work, last.

    Raises IdempotencyKeyTaken when another request holds the key: the caller's transaction
    must roll back (its order with it) and look the key up again.
    """
    params: dict[str, Any] = {
        "client_id": request.client_id,
        "key": request.key,
        "fingerprint": request.fingerprint,
        "status": response.status,
        "body": json.dumps(response.body),
        "location": response.location,
        "lifetime": KEY_LIFETIME,
        "stale": _stale_claim_after(),
        "completed": IdempotencyKeyStatus.COMPLETED,
        "in_progress": IdempotencyKeyStatus.IN_PROGRESS,
    }
    with connection.cursor() as cursor:
        cursor.execute(_STORE_SQL, params)
        if cursor.fetchone() is None:
            raise IdempotencyKeyTaken(request.key)


def idempotent(*, request: IdempotentRequest | None, work: Callable[[], StoredResponse]) -> StoredResponse:
    """The response stored under the request's key, or `work`'s, stored under the key.

    Without a key: `work` in a transaction of its own. With one, each try is one
    transaction: `work` (its writes join it), then the key's row with its response,
    last. A try that loses the key to a concurrent request rolls back, its writes with
    it, and the key is looked up again: that request's response is replayed. Gone again
    by then means deleted meanwhile (expired, or an older release's claim released), and
    the work is simply done again.
    Raises IdempotencyKeyReused, IdempotencyKeyInProgress, or what `work` raises (nothing kept).
    """
    if request is None:
        with transaction.atomic():
            return work()
    for _ in range(_KEY_LOOKUPS):
        stored = idempotency_lookup(request=request)
        if stored is not None:
            return stored
        try:
            with transaction.atomic():
                response = work()
                idempotency_store(request=request, response=response)
        except IdempotencyKeyTaken:
            continue
        return response
    raise IdempotencyKeyInProgress(_IN_PROGRESS)


def idempotency_keys_purge(*, batch_size: int = 1000) -> int:
    """Delete keys past their 24 hours, a bounded batch per statement. Returns rows deleted."""
    cutoff = timezone.now() - KEY_LIFETIME
    deleted_total = 0
    while True:
        ids = list(IdempotencyKey.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted_total
        deleted, _ = IdempotencyKey.objects.filter(id__in=ids, created_at__lt=cutoff).delete()
        deleted_total += deleted
