"""Queue a relay run right after a commit that wrote events, coalesced.

Each enqueue registers `relay_kick` on commit. A marker in Redis (SET NX)
lets only the first commit of a burst queue a run; the run clears the marker
when it starts, so commits after that queue the next one. Beat's sweep is the
safety net for a kick lost to a Redis or broker outage: a kick never fails
the request that caused it.
"""

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)

KICK_KEY = "outbox:relay-kick"
# Upper bound on how long a lost run (worker died before clearing it) can
# suppress kicks; beat sweeps meanwhile.
KICK_MARKER_TTL_SECONDS = 5


def relay_kick() -> None:
    try:
        if not cache.add(KICK_KEY, 1, timeout=KICK_MARKER_TTL_SECONDS):
            return  # a run is already queued
        from outbox.tasks import relay_outbox

        relay_outbox.apply_async(retry=False)
    except Exception:
        logger.warning("Could not queue an outbox relay run; beat's sweep will pick the events up", exc_info=True)
