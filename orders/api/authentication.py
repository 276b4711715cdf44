"""API token authentication: django-rest-knox, hardened against bytes that are not UTF-8."""

import binascii
from hmac import compare_digest
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions

from orders.selectors import SCOPE_ATTRIBUTE, client_scope_columns, client_scope_of


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's `Authorization: Token <key>`; knox stores only a digest and an expiry.

    knox decodes the key as UTF-8 and lets UnicodeDecodeError escape (a 500 for a
    header such as `Token \\xe9`); a key that is not UTF-8 cannot be a token, so it
    gets the same 401 as any other wrong key.
    """

    def authenticate_credentials(self, token: bytes) -> Any:
        """knox's lookup, with the client's scope loaded in the same query (orders.selectors).

        knox's own loop, plus the scope columns: a request then costs one query for
        authentication and authorisation together instead of four (token, the user's
        other tokens, user permissions, group permissions).
        """
        try:
            key = token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        granted, bound = client_scope_columns(user_ref="user_id")
        candidates = (
            get_token_model()
            .objects.filter(token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH])
            .select_related("user")
            .annotate(scope_any_customer=granted, scope_customer_id=bound)
        )
        for auth_token in candidates:
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(key)
            except (TypeError, binascii.Error):
                raise exceptions.AuthenticationFailed("Invalid token.") from None
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                user, auth_token = self.validate_user(auth_token)
                scope = client_scope_of(
                    user=user, any_customer=auth_token.scope_any_customer, customer_id=auth_token.scope_customer_id
                )
                setattr(user, SCOPE_ATTRIBUTE, scope)
                return user, auth_token
        raise exceptions.AuthenticationFailed("Invalid token.")

    def _cleanup_token(self, auth_token: Any) -> bool:
        """True (and the token deleted) when it has expired, as knox does.

        knox also loads every other token of the user on each request to delete the
        expired ones: a query per request that grows with the client's tokens. An
        expired token is refused (and deleted) when it is used; unused ones stay
        behind harmlessly until then.
        """
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            token_expired.send(sender=type(self), username=auth_token.user.get_username(), source="auth_token")
            return True
        return False


class TokenScheme(OpenApiAuthenticationExtension):
    """The schema's security scheme for it, under the name clients already know (`tokenAuth`)."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> Any:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
