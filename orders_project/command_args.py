"""Argument types shared by the management commands of every app."""

import datetime as dt

from django.core.management.base import CommandError


def moment(value: str) -> dt.datetime:
    """ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not an ISO 8601 date or time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
