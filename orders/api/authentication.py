"""API token authentication: django-rest-knox, hardened against bytes that are not UTF-8."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's `Authorization: Token <key>`; knox stores only a digest and an expiry.

    knox decodes the key as UTF-8 and lets UnicodeDecodeError escape (a 500 for a
    header such as `Token \\xe9`); a key that is not UTF-8 cannot be a token, so it
    gets the same 401 as any other wrong key.
    """

    def authenticate_credentials(self, token: bytes) -> Any:
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)


class TokenScheme(OpenApiAuthenticationExtension):
    """The schema's security scheme for it, under the name clients already know (`tokenAuth`)."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> Any:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
