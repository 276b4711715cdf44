"""`skip`/`limit` paging with the list shape of the API contract:

    {"count": N, "next": url|null, "previous": url|null, "data": [...]}

Unlike DRF's LimitOffsetPagination, a bad `skip` or `limit` is a 400, not
silently replaced by the default.
"""

from typing import Any

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageParamsSerializer(serializers.Serializer):
    skip = serializers.IntegerField(min_value=0, max_value=1_000_000, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)


class SkipLimitPagination(LimitOffsetPagination):
    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT
    limit_query_param = "limit"
    offset_query_param = "skip"

    def paginate_queryset(self, queryset: Any, request: Request, view: APIView | None = None) -> list[Any]:
        params = PageParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        self._validated = params.validated_data
        return super().paginate_queryset(queryset, request, view) or []

    def get_limit(self, request: Request) -> int:
        return int(self._validated["limit"])

    def get_offset(self, request: Request) -> int:
        return int(self._validated["skip"])

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {"count": self.count, "next": self.get_next_link(), "previous": self.get_previous_link(), "data": data}
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["count", "next", "previous", "data"],
            "properties": {
                "count": {"type": "integer", "example": 42},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "data": schema,
            },
        }
