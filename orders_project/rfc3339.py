"""RFC 3339 text for timestamps in events, one format everywhere."""

import datetime as dt


def rfc3339(value: dt.datetime | None) -> str | None:
    """UTC with a trailing Z, e.g. 2026-11-25T04:10:26.123456Z; None stays None."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
