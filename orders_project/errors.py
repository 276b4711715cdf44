"""Domain errors shared by every app.

Services raise these; the API's exception handler turns each into the one
error shape with its `code`. They carry no HTTP knowledge beyond the kind of
failure, so commands and tasks can catch them too.
"""


class DomainError(Exception):
    """A request that the domain refuses. `code` is machine-readable and stable."""

    code = "domain_error"
    # The HTTP status the API answers with; 422 means "well-formed but refused".
    http_status = 422

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConflictError(DomainError):
    """The resource is in a state that does not allow the request (409)."""

    code = "conflict"
    http_status = 409


class ServiceUnavailableError(DomainError):
    """A server the request depends on is unreachable; retry later (503)."""

    code = "service_unavailable"
    http_status = 503
    retry_after_seconds = 5
