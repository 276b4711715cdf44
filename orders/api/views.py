"""Order endpoints. Thin: parse input, call one service or selector, represent."""

import logging
import uuid
from typing import Any

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from orders import selectors, services
from orders.api.filters import OrderFilter
from orders.api.permissions import customer_check, may_view_customer_pii, may_view_who_changed
from orders.api.serializers import (
    OrderCancelInputSerializer,
    OrderCreateInputSerializer,
    OrderDetailSerializer,
    OrderSerializer,
    OrderStatusChangeSerializer,
)
from orders.idempotency import (
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    IdempotencyKeyInProgress,
    IdempotencyKeyTaken,
    IdempotentRequest,
    StoredResponse,
    idempotency_lookup,
    idempotency_store,
    request_fingerprint,
)
from orders.models import Order, orders_items_load
from orders_project.api.serializers import ErrorSerializer

logger = logging.getLogger(__name__)

# Times a create with an Idempotency-Key looks its key up: once, and again after each loss
# of the key to a concurrent request whose row then vanished (a race, not a loop to wait in).
_KEY_LOOKUPS = 3


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
    queryset = Order.objects.none()  # for the schema; get_queryset() scopes to the caller

    def get_queryset(self) -> Any:
        return selectors.order_list(user=self.request.user)

    def paginate_queryset(self, queryset: Any) -> Any:
        """The page, with every order's items loaded by one query."""
        page = super().paginate_queryset(queryset)
        return None if page is None else orders_items_load(list(page))

    def get_serializer_class(self) -> Any:
        # The browsable API builds its POST forms from get_serializer() for the action the
        # form posts to: with the input serializers, the create and cancel forms start from
        # the fields those actions take (with the output one they started as "{}").
        return _INPUT_SERIALIZERS.get(self.action or "", OrderSerializer)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        order = self.get_object()
        # Not even looked up for a client that may not see it.
        customer = selectors.order_customer(order=order) if may_view_customer_pii(user=request.user) else None
        context = {**self.get_serializer_context(), "customer": customer}
        return Response(OrderDetailSerializer(order, context=context).data)

    def get_object(self) -> Order:
        try:
            order_id = uuid.UUID(str(self.kwargs["pk"]))
            return selectors.order_get(user=self.request.user, order_id=order_id)
        except (ValueError, Order.DoesNotExist):
            raise Http404 from None

    @extend_schema(
        summary="Create an order",
        request=OrderCreateInputSerializer,
        parameters=[_IDEMPOTENCY_HEADER],
        responses={201: OrderSerializer, **_errors(400, 401, 403, 409, 415, 422, 503)},
    )
    def create(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return self._create(request)
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise serializers.ValidationError({"Idempotency-Key": [f"Must be 1 to {MAX_KEY_LENGTH} characters."]})
        if not KEY_PATTERN.fullmatch(key):
            raise serializers.ValidationError({"Idempotency-Key": ["Must be printable ASCII, no control characters."]})
        fingerprint = request_fingerprint(method=request.method or "", path=request.path, body=request.data)
        idempotent = IdempotentRequest(client_id=_client_id(request), key=key, fingerprint=fingerprint)
        # Looked up again after losing the key to a concurrent request (its response is then
        # replayed); gone again by then means deleted meanwhile (expired, or an older release's
        # claim released), and the work is simply done again.
        for _ in range(_KEY_LOOKUPS):
            stored = idempotency_lookup(request=idempotent)
            if stored is not None:
                return Response(stored.body, status=stored.status, headers={"Location": stored.location})
            try:
                return self._create(request, idempotent=idempotent)
            except IdempotencyKeyTaken:
                continue
        raise IdempotencyKeyInProgress("A request with this Idempotency-Key is still being processed; retry later.")

    def _create(self, request: Request, idempotent: IdempotentRequest | None = None) -> Response:
        params = OrderCreateInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        # Scope first: order_create's customer lookup would tell a stranger who exists.
        customer_check(user=request.user, user_id=params.validated_data["user_id"])
        with transaction.atomic():
            order = services.order_create(
                **params.validated_data,
                created_by_id=request.user.pk,
                changed_by=_changed_by(request),
            )
            body = OrderSerializer(order, context=self.get_serializer_context()).data
            location = request.build_absolute_uri(f"{request.path}{order.id}/")
            if idempotent is not None:
                stored = StoredResponse(status=status.HTTP_201_CREATED, body=body, location=location)
                idempotency_store(request=idempotent, response=stored)
        logger.info("Order %s created for %s", order.id, order.user_id, extra={"order_id": str(order.id)})
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

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
        order = self.get_object()
        params = OrderCancelInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            services.order_cancel(
                order_id=order.id,
                reason=params.validated_data["reason"],
                changed_by=_changed_by(request),
            )
        except Order.DoesNotExist:
            raise Http404 from None
        logger.info("Order %s cancelled", order.id, extra={"order_id": str(order.id)})
        fresh = selectors.order_get(user=request.user, order_id=order.id)
        return Response(OrderSerializer(fresh, context=self.get_serializer_context()).data)
