"""API token authentication: django-rest-knox, hardened against bytes that are not UTF-8."""

import binascii
from hmac import compare_digest
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from orders.api import token_cache
from orders.selectors import SCOPE_ATTRIBUTE, client_scope_of, client_scope_sql
from orders_project.api.throttles import auth_failure_refuse


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's `Authorization: Token <key>`; knox stores only a digest and an expiry.

    knox decodes the key as UTF-8 and lets UnicodeDecodeError escape (a 500 for a
    header such as `Token \\xe9`); a key that is not UTF-8 cannot be a token, so it
    gets the same 401 as any other wrong key.
    """

    def authenticate(self, request: Any) -> Any:
        """knox's, refused with 429 before the lookup when the client's address has spent
        its failed authentications (API_THROTTLE_AUTH_FAILURE_RATE): guessing tokens
        costs no query beyond that rate. The same round trip reads the token cache's epoch
        (orders.api.token_cache), which authenticate_credentials keeps its rows under."""
        self._epoch: bytes | None = None
        if get_authorization_header(request):
            self._epoch = auth_failure_refuse(request, also_read=token_cache.EPOCH_KEY)
            if self._epoch == b"":  # Redis answered without an epoch (fresh or restarted)
                token_cache.epoch_missing()
                self._epoch = None
        return super().authenticate(request)

    def authenticate_credentials(self, token: bytes) -> Any:
        """knox's lookup, with the user and the client's scope in the same query.

        knox's own loop over the tokens with the key's prefix, plus the user and the
        scope columns (orders.selectors.client_scope_sql): one query for authentication
        and authorisation together instead of four (token, the user's other tokens,
        user permissions, group permissions). Written as SQL because it runs on every
        request: the ORM spent longer compiling it than PostgreSQL answering it.
        """
        try:
            key = token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        for auth_token, scope_columns in _tokens_with_prefix(key[: CONSTANTS.TOKEN_KEY_LENGTH], epoch=self._epoch):
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
                any_customer, customer_pii, customer_id = scope_columns
                scope = client_scope_of(
                    user=user, any_customer=any_customer, customer_pii=customer_pii, customer_id=customer_id
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


def _tokens_with_prefix(token_key: str, *, epoch: bytes | None) -> list[tuple[Any, tuple[bool, bool, str | None]]]:
    """The tokens whose key starts with `token_key`, each with its user loaded (as
    select_related would) and its client's scope columns; the rows from the token cache
    when it holds them under `epoch`."""
    token_model, user_model = get_token_model(), get_user_model()
    token_fields, user_fields = token_model._meta.concrete_fields, user_model._meta.concrete_fields
    rows = token_cache.rows_get(token_key, epoch=epoch)
    if rows is None:
        scope, scope_params = client_scope_sql(user_column="t.user_id")
        columns = [f"t.{f.column}" for f in token_fields] + [f"u.{f.column}" for f in user_fields]
        sql = (
            f"SELECT {', '.join(columns)}, {scope} FROM {token_model._meta.db_table} t"
            f" JOIN {user_model._meta.db_table} u ON u.id = t.user_id WHERE t.token_key = %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*scope_params, token_key])
            rows = cursor.fetchall()
        if rows:  # an unknown prefix is not kept: guesses would only churn the cache
            token_cache.rows_put(token_key, rows, epoch=epoch)
    found = []
    for row in rows:
        auth_token = token_model.from_db(DEFAULT_DB_ALIAS, [f.attname for f in token_fields], row[: len(token_fields)])
        user_values = row[len(token_fields) : len(token_fields) + len(user_fields)]
        auth_token.user = user_model.from_db(DEFAULT_DB_ALIAS, [f.attname for f in user_fields], user_values)
        found.append((auth_token, (bool(row[-3]), bool(row[-2]), row[-1])))
    return found


class TokenScheme(OpenApiAuthenticationExtension):
    """The schema's security scheme for it, under the name clients already know (`tokenAuth`)."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> Any:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
