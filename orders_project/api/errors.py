"""One error shape for every API error:

    {"code": "validation_error", "message": "...", "details": {"field": ["..."]}}

`code` is machine-readable and stable; `details` is present (possibly empty)
on every error and holds per-field messages for validation errors.
"""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from orders_project.api.throttles import auth_failure_count
from orders_project.errors import DomainError, ServiceUnavailableError

logger = logging.getLogger(__name__)

# DRF exception class -> (code, default message). Anything not listed keeps DRF's own code.
_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def _too_large_message() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"The request body is larger than {limit} bytes, the most this service accepts."


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than this service accepts."
    default_code = "request_too_large"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details if details is not None else {}}


def _api_exception_response(exc: exceptions.APIException) -> Response:
    code = _CODES.get(type(exc), str(exc.default_code))
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return Response(error_body(code, "The request has invalid fields.", details), status=exc.status_code)
    return Response(error_body(code, str(exc.detail)), status=exc.status_code, headers=headers)


def _view_name(context: dict[str, Any]) -> str:
    view = context.get("view")
    return type(view).__name__ if view else "API view"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF EXCEPTION_HANDLER: map every exception to the one error shape."""
    if isinstance(exc, DomainError):
        headers = {}
        if isinstance(exc, ServiceUnavailableError):
            headers["Retry-After"] = str(exc.retry_after_seconds)
        return Response(error_body(exc.code, exc.message), status=exc.http_status, headers=headers)
    if isinstance(exc, OperationalError | InterfaceError):
        # PostgreSQL unreachable, restarting, or our session ended (failover, pg_terminate_backend):
        # the request can succeed later, so say so; a 500 would say it never will (make chaos, scenario 3).
        logger.warning("Database unavailable in %s: %r", _view_name(context), exc)
        retry = str(ServiceUnavailableError.retry_after_seconds)
        body = error_body("service_unavailable", "The database is unavailable; retry later.")
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": retry})
    if isinstance(exc, RequestDataTooBig):
        # Django's limit (DATA_UPLOAD_MAX_MEMORY_SIZE), hit when DRF reads the body.
        exc = RequestTooLarge(_too_large_message())
    elif isinstance(exc, SuspiciousOperation | BadRequest):
        exc = exceptions.ParseError(str(exc) or "Malformed request.")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed) and context.get("request"):
        # Every 401 passes here, the token lookups it cost included: counted per client
        # address, and a 429 instead beyond API_THROTTLE_AUTH_FAILURE_RATE (the throttles
        # run after authentication, so they never see these).
        exc = auth_failure_count(context["request"]) or exc
    if isinstance(exc, exceptions.APIException):
        return _api_exception_response(exc)
    logger.exception("Unhandled error in %s", _view_name(context), exc_info=exc)
    return Response(
        error_body("internal_error", "An unexpected error occurred; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def not_found_view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler404: URLs outside DRF answer in the same shape."""
    return JsonResponse(error_body("not_found", "No such resource."), status=404)


def bad_request_view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler400: Django's 400s outside DRF (a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413).

    Django calls it for SuspiciousOperation and BadRequest raised anywhere, e.g. an
    oversized or undecodable form body sent to the admin or the login page, or a
    Host header not in ALLOWED_HOSTS.
    """
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(error_body("request_too_large", _too_large_message()), status=413)
    return JsonResponse(error_body("malformed_request", "The request could not be understood."), status=400)


def permission_denied_view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler403: PermissionDenied outside DRF (e.g. an admin page the staff user may not see)."""
    message = "You do not have permission to perform this action."
    return JsonResponse(error_body("permission_denied", message), status=403)


def csrf_failure_view(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF_FAILURE_VIEW: a browser session's missing or bad CSRF token, worded as DRF words it inside the API."""
    return JsonResponse(error_body("permission_denied", f"CSRF Failed: {reason}"), status=403)


def server_error_view(request: HttpRequest) -> JsonResponse:
    """handler500: errors outside DRF answer in the same shape."""
    return JsonResponse(error_body("internal_error", "An unexpected error occurred; it has been logged."), status=500)


def lockout_response(request: HttpRequest, credentials: Any = None, *args: Any, **kwargs: Any) -> JsonResponse:
    """AXES_LOCKOUT_CALLABLE: too many failed logins, in the one error shape."""
    response = JsonResponse(error_body("throttled", "Too many failed login attempts; try again later."), status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
