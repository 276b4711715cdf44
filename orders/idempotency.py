"""Idempotency-Key handling for order creation.

A key is claimed in its own short transaction before the work starts, so a
second request with the same key sees the claim at once (409 while running)
instead of blocking on a lock. The response is stored in the same
transaction as the order itself: either both exist or neither does, so a
crash can never leave an order whose key replays nothing.

A claim left IN_PROGRESS for IDEMPOTENCY_STALE_CLAIM_SECONDS (5 minutes) is
taken to belong to a crashed process and may be taken over. The first request
may still be running, though (a paused or very slow process): so each claim is
identified by the moment it was made (`created_at`, rewritten on takeover),
and completing or releasing a claim only touches the row if it is still that
claim. The slow first request then finds its claim gone, raises
IdempotencyClaimLost (409) and its transaction, order included, rolls back:
one key, one order.
"""

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.models import IdempotencyKey, IdempotencyKeyStatus
from orders_project.errors import ConflictError, DomainError

KEY_LIFETIME = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255
# Printable ASCII: PostgreSQL refuses NUL in text, and control characters in a key
# are a client bug (or an attack on logs), never a real key.
KEY_PATTERN = re.compile(r"[\x20-\x7e]+")


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"


class IdempotencyKeyInProgress(ConflictError):
    code = "idempotency_key_in_progress"


class IdempotencyClaimLost(ConflictError):
    code = "idempotency_claim_lost"


@dataclass(frozen=True)
class Claim:
    """The caller's ownership of a key; `claimed_at` tells this claim from a later takeover."""

    client_id: int
    key: str
    claimed_at: dt.datetime


def _stale_claim_after() -> dt.timedelta:
    # A claim this old whose request never completed is taken to belong to a crashed process.
    return dt.timedelta(seconds=settings.IDEMPOTENCY_STALE_CLAIM_SECONDS)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    location: str


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_claim(*, client_id: int, key: str, fingerprint: str) -> Claim | StoredResponse:
    """Claim `key` for this client, or return the response stored under it.

    Returns a Claim when the caller now owns the key and must do the work.
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
        return Claim(client_id=client_id, key=key, claimed_at=now)
    except IntegrityError:
        pass
    with transaction.atomic():
        record = IdempotencyKey.objects.select_for_update().get(client_id=client_id, key=key)
        expired = record.created_at < now - KEY_LIFETIME
        abandoned = record.status == IdempotencyKeyStatus.IN_PROGRESS and record.created_at < now - _stale_claim_after()
        if expired or abandoned:
            record.request_fingerprint = fingerprint
            record.status = IdempotencyKeyStatus.IN_PROGRESS
            record.response_status = None
            record.response_body = None
            record.response_location = ""
            record.created_at = now
            record.save()
            return Claim(client_id=client_id, key=key, claimed_at=now)
    if record.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request body.")
    if record.status == IdempotencyKeyStatus.IN_PROGRESS:
        raise IdempotencyKeyInProgress("A request with this Idempotency-Key is still being processed; retry later.")
    assert record.response_status is not None
    return StoredResponse(status=record.response_status, body=record.response_body, location=record.response_location)


def _owned(claim: Claim) -> Any:
    return IdempotencyKey.objects.filter(
        client_id=claim.client_id,
        key=claim.key,
        status=IdempotencyKeyStatus.IN_PROGRESS,
        created_at=claim.claimed_at,
    )


def idempotency_complete(*, claim: Claim, response: StoredResponse) -> None:
    """Store the response; call inside the transaction that did the work, last.

    Raises IdempotencyClaimLost when another request took the key over meanwhile:
    the caller's transaction must roll back so the key's work is done once. The
    UPDATE waits for a competing request's uncommitted change to the row, then
    re-checks the claim (READ COMMITTED), so two requests cannot both win.
    """
    updated = _owned(claim).update(
        status=IdempotencyKeyStatus.COMPLETED,
        response_status=response.status,
        response_body=response.body,
        response_location=response.location,
    )
    if updated != 1:
        raise IdempotencyClaimLost(
            "This request took so long that another request with the same Idempotency-Key took over; "
            "nothing was created by this one. Retry to get that request's response."
        )


def idempotency_release(*, claim: Claim) -> None:
    """Forget an unfinished claim after a failed request, so the client can retry with the same key.

    Only this claim: a takeover by a later request is left alone.
    """
    _owned(claim).delete()


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
