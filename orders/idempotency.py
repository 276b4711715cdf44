"""Idempotency-Key handling for order creation.

A key is claimed in its own short transaction before the work starts, so a
second request with the same key sees the claim at once (409 while running)
instead of blocking on a lock. The response is stored in the same
transaction as the order itself: either both exist or neither does, so a
crash can never leave an order whose key replays nothing.
"""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.models import IdempotencyKey, IdempotencyKeyStatus
from orders_project.errors import ConflictError, DomainError

KEY_LIFETIME = dt.timedelta(hours=24)
# A claim this old whose request never completed belongs to a crashed process.
STALE_CLAIM_AFTER = dt.timedelta(minutes=5)
MAX_KEY_LENGTH = 255


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"


class IdempotencyKeyInProgress(ConflictError):
    code = "idempotency_key_in_progress"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    location: str


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_claim(*, client_id: int, key: str, fingerprint: str) -> StoredResponse | None:
    """Claim `key` for this client, or return the response stored under it.

    Returns None when the caller now owns the key and must do the work.
    Raises IdempotencyKeyReused (different body) or IdempotencyKeyInProgress.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(
                client_id=client_id,
                key=key,
                request_fingerprint=fingerprint,
                status=IdempotencyKeyStatus.IN_PROGRESS,
                created_at=now,
            )
        return None
    except IntegrityError:
        pass
    with transaction.atomic():
        record = IdempotencyKey.objects.select_for_update().get(client_id=client_id, key=key)
        expired = record.created_at < now - KEY_LIFETIME
        abandoned = record.status == IdempotencyKeyStatus.IN_PROGRESS and record.created_at < now - STALE_CLAIM_AFTER
        if expired or abandoned:
            record.request_fingerprint = fingerprint
            record.status = IdempotencyKeyStatus.IN_PROGRESS
            record.response_status = None
            record.response_body = None
            record.response_location = ""
            record.created_at = now
            record.save()
            return None
    if record.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request body.")
    if record.status == IdempotencyKeyStatus.IN_PROGRESS:
        raise IdempotencyKeyInProgress("A request with this Idempotency-Key is still being processed; retry later.")
    assert record.response_status is not None
    return StoredResponse(status=record.response_status, body=record.response_body, location=record.response_location)


def idempotency_complete(*, client_id: int, key: str, response: StoredResponse) -> None:
    """Store the response; call inside the transaction that did the work."""
    IdempotencyKey.objects.filter(client_id=client_id, key=key).update(
        status=IdempotencyKeyStatus.COMPLETED,
        response_status=response.status,
        response_body=response.body,
        response_location=response.location,
    )


def idempotency_release(*, client_id: int, key: str) -> None:
    """Forget an unfinished claim after a failed request, so the client can retry with the same key."""
    IdempotencyKey.objects.filter(client_id=client_id, key=key, status=IdempotencyKeyStatus.IN_PROGRESS).delete()


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
