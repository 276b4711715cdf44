"""A changelist whose query-string lookups cannot cause a 500.

The admin's changelist passes `?field__lookup=value` from the query string on to
the ORM. Django turns errors it meets while building the filter into
IncorrectLookupParameters (the changelist answers with `?e=1`), but some values
build fine and fail only when PostgreSQL or the SQL compiler sees them: a
date-time with an offset PostgreSQL refuses (`+20:00`), a NUL in a text value, a
year out of range (`created_at__year=99999`). The changelist counts its rows
while it is built, with the same WHERE, so those failures surface here and are
refused the same way, inside a savepoint so that the request's connection stays usable.
"""

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db import DataError, transaction
from django.http import HttpRequest


class SafeLookupsAdmin(admin.ModelAdmin):
    def get_changelist_instance(self, request: HttpRequest) -> Any:
        try:
            with transaction.atomic():
                return super().get_changelist_instance(request)
        except (DataError, ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc
