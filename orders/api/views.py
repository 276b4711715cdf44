"""Order endpoints. Thin: parse input, call one service or selector, represent."""

import functools
import logging
import uuid
from typing import Any

from django.db import transaction
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from orders import selectors, services
from orders.api.filters import OrderFilter, order_list_filters
from orders.api.permissions import customer_check, may_view_customer_pii, may_view_who_changed
from orders.api.serializers import (
    OrderCancelInputSerializer,
    OrderCreateInputSerializer,
    OrderDetailSerializer,
    OrderSerializer,
    OrderStatusChangeSerializer,
    create_input_validate,
    customer_represent,
)
from orders.idempotency import (
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    IdempotentRequest,
    StoredResponse,
    idempotent,
    request_fingerprint,
)
from orders.models import Order
from orders_project.api.pagination import SkipLimitPagination
from orders_project.api.serializers import ErrorSerializer

logger = logging.getLogger(__name__)


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input (`validation_error`, `malformed_request`).",
        401: "Missing or bad credentials (`not_authenticated`, `authentication_failed`).",
        403: "This client may not act for the order's customer (`permission_denied`).",
        404: "No such order visible to this client (`not_found`).",
        405: "Method not allowed (`method_not_allowed`).",
        409: "Conflict (`order_not_cancellable`, `idempotency_key_in_progress`).",
        415: "Body is not JSON (`unsupported_media_type`).",
        422: "Refused (`idempotency_key_reused`, `user_not_found`, `user_inactive`).",
        429: "Over this client's rate; see Retry-After (`throttled`).",
        500: "Unexpected error (`internal_error`).",
        503: "A server the request needs is down; see Retry-After (`service_unavailable`).",
    }
    # Every operation is rate-limited (429), can meet a database or cache outage (503) and can
    # fail unexpectedly (500): those are documented everywhere.
    every = dict.fromkeys((*codes, 429, 500, 503))
    return {code: OpenApiResponse(ErrorSerializer, description=descriptions[code]) for code in sorted(every)}


_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": f"^{KEY_PATTERN.pattern}$"},
    OpenApiParameter.HEADER,
    required=False,
    description="Same key + same body within 24 h returns the first response again and creates nothing.",
)


def _client_id(request: Request) -> int:
    pk = request.user.pk
    assert pk is not None, "IsAuthenticated lets no anonymous request through"
    return int(pk)


def _idempotent_request(request: Request) -> IdempotentRequest | None:
    """The request's Idempotency-Key with the body's fingerprint, None without one; 400 for a bad key."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise serializers.ValidationError({"Idempotency-Key": [f"Must be 1 to {MAX_KEY_LENGTH} characters."]})
    if not KEY_PATTERN.fullmatch(key):
        raise serializers.ValidationError({"Idempotency-Key": ["Must be printable ASCII, no control characters."]})
    fingerprint = request_fingerprint(method=request.method or "", path=request.path, body=request.data)
    return IdempotentRequest(client_id=_client_id(request), key=key, fingerprint=fingerprint)


def _changed_by(request: Request) -> str:
    return f"client:{request.user.get_username()}"


_INPUT_SERIALIZERS: dict[str, type[serializers.Serializer]] = {
    "create": OrderCreateInputSerializer,
    "cancel": OrderCancelInputSerializer,
}


@extend_schema_view(
    list=extend_schema(summary="List orders, newest first", responses={200: OrderSerializer, **_errors(400, 401)}),
    retrieve=extend_schema(summary="Read one order", responses={200: OrderDetailSerializer, **_errors(401, 404)}),
)
class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    filter_backends = [DjangoFilterBackend]  # the schema's and the browsable form's; list() reads them
    queryset = Order.objects.none()  # for the schema; get_queryset() scopes to the caller

    def get_queryset(self) -> Any:
        return selectors.order_list(user=self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A page read in plain SQL already in OrderSerializer's representation (orders.listing):
        through querysets a page of 100 cost 1.5-1.8 times its CPU (docs/performance.md)."""
        listing = selectors.order_listing(user=request.user, filters=order_list_filters(request.query_params))
        paginator = self.paginator
        assert isinstance(paginator, SkipLimitPagination)  # the API's (settings.REST_FRAMEWORK)
        return paginator.get_paginated_response(paginator.paginate(listing, request))

    def get_serializer_class(self) -> Any:
        # The browsable API builds its POST forms from get_serializer() for the action the
        # form posts to: with the input serializers, the create and cancel forms start from
        # the fields those actions take (with the output one they started as "{}").
        return _INPUT_SERIALIZERS.get(self.action or "", OrderSerializer)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The order read in plain SQL already in its representation, as a list page is
        (selectors.order_represented); OrderDetailSerializer stays its schema, and
        orders/tests/test_representation.py holds these bytes to its generic walk."""
        try:
            order = selectors.order_represented(user=request.user, order_id=self._order_id())
        except Order.DoesNotExist:
            raise Http404 from None
        # Not even looked up for a client that may not see it.
        pii = may_view_customer_pii(user=request.user)
        customer = selectors.order_customer(user_id=order["user_id"]) if pii else None
        return Response({**order, "customer": customer_represent(customer)})

    def get_object(self) -> Order:
        try:
            return selectors.order_get(user=self.request.user, order_id=self._order_id())
        except Order.DoesNotExist:
            raise Http404 from None

    def _order_id(self) -> uuid.UUID:
        try:
            return uuid.UUID(str(self.kwargs["pk"]))
        except ValueError:
            raise Http404 from None

    @extend_schema(
        summary="Create an order",
        request=OrderCreateInputSerializer,
        parameters=[_IDEMPOTENCY_HEADER],
        responses={201: OrderSerializer, **_errors(400, 401, 403, 409, 415, 422, 503)},
    )
    def create(self, request: Request) -> Response:
        # With a key the body is judged after the key's lookup: a key used with another body is
        # 422 whatever this body is, and a replay is answered as it was first.
        created = idempotent(request=_idempotent_request(request), work=functools.partial(self._create, request))
        return Response(created.body, status=created.status, headers={"Location": created.location})

    def _create(self, request: Request) -> StoredResponse:
        params = create_input_validate(request.data)
        # Scope first: order_create's customer lookup would tell a stranger who exists.
        customer_check(user=request.user, user_id=params["user_id"])
        order = services.order_create(
            **params,
            created_by_id=request.user.pk,
            changed_by=_changed_by(request),
        )
        # Logged once the order is kept (with a key, a try that loses it rolls back unlogged).
        transaction.on_commit(
            lambda: logger.info("Order %s created for %s", order.id, order.user_id, extra={"order_id": str(order.id)})
        )
        body = OrderSerializer(order, context=self.get_serializer_context()).data
        location = request.build_absolute_uri(f"{request.path}{order.id}/")
        return StoredResponse(status=status.HTTP_201_CREATED, body=body, location=location)

    @extend_schema(
        summary="Status history of an order, oldest first",
        responses={200: OrderStatusChangeSerializer(many=True), **_errors(401, 404)},
    )
    # The history is a short, complete list: no paging and none of the list's filters
    # (without this the schema documented skip/limit/status/... and a paged shape).
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request: Request, pk: str) -> Response:
        order = self.get_object()
        rows = selectors.order_history(order=order)
        context = {"full_changed_by": may_view_who_changed(user=request.user)}
        return Response(OrderStatusChangeSerializer(rows, many=True, context=context).data)

    @extend_schema(
        summary="Cancel a pending or confirmed order",
        request=OrderCancelInputSerializer,
        responses={200: OrderSerializer, **_errors(400, 401, 404, 409, 415)},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        # An order the client may not see is 404 before its body is even read.
        order_id = self._order_id()
        if not selectors.order_visible(user=request.user, order_id=order_id):
            raise Http404
        params = OrderCancelInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            services.order_cancel(
                order_id=order_id,
                reason=params.validated_data["reason"],
                changed_by=_changed_by(request),
            )
            logger.info("Order %s cancelled", order_id, extra={"order_id": str(order_id)})
            # Answered as the GET reads it, in plain SQL (OrderSerializer's representation).
            return Response(selectors.order_represented(user=request.user, order_id=order_id))
        except Order.DoesNotExist:
            raise Http404 from None
