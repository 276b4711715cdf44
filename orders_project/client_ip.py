"""The address of the client behind our own proxies: one home for the rate limits
(API throttling, login lockout) so both count the same client.

X-Forwarded-For is a list that every proxy appends to; anything left of our
own proxies' entries was written by the client and proves nothing. With
API_NUM_PROXIES=N the client is the N-th address from the right; with 0 (no
proxy) it is the peer address.
"""

from typing import Any

from django.conf import settings


def client_ip(request: Any, credentials: Any = None) -> str:
    """Also usable as AXES_CLIENT_IP_CALLABLE (which passes the request only)."""
    meta = request.META
    proxies = settings.API_NUM_PROXIES
    if proxies > 0:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return str(meta.get("REMOTE_ADDR", ""))
