"""manage.py create_api_token NAME [--user-id CUSTOMER | --service] [--staff] [--expiry-days N]."""

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from knox.models import AuthToken

from orders.models import ApiClient
from orders.selectors import ClientScope, client_scope

DEFAULT_EXPIRY_DAYS = 90
MAX_EXPIRY_DAYS = 3650


def _permission(codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label="orders", codename=codename)


def _describe(scope: ClientScope) -> str:
    if scope.any_customer:
        return "acts for any customer"
    if scope.customer_id is None:
        return "acts for no customer (give it --user-id or --service)"
    return f"acts for customer {scope.customer_id!r}"


class Command(BaseCommand):
    help = (
        "Create the API user NAME if needed, set what it may do, and print a NEW token for it. "
        "Tokens are stored only as a digest, so an existing token can never be shown again: "
        "each run adds a token (older ones stay valid until they expire or are revoked with "
        "revoke_api_tokens). Without --user-id or --service the user's scope is left as it is."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument(
            "--user-id",
            dest="customer_id",
            metavar="CUSTOMER",
            help="Bind the client to this customer: it creates, sees and cancels only orders with this user_id.",
        )
        scope.add_argument(
            "--service",
            action="store_true",
            help="A service client: may act for any customer (grants orders.act_for_any_customer).",
        )
        parser.add_argument(
            "--view-customer-pii",
            action="store_true",
            help="Also show it the customer's name and email on an order (grants orders.view_customer_pii).",
        )
        parser.add_argument("--staff", action="store_true", help="Staff act for every customer and see their PII.")
        parser.add_argument(
            "--expiry-days",
            type=int,
            default=DEFAULT_EXPIRY_DAYS,
            help=f"Days until the new token expires (default {DEFAULT_EXPIRY_DAYS}; 0 = never, "
            "for a token that is rotated and revoked by other means).",
        )

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        customer_id: str | None = options["customer_id"]
        if customer_id is not None and not 1 <= len(customer_id) <= 64:
            raise CommandError("--user-id must be 1 to 64 characters (an order's user_id).")
        expiry_days: int = options["expiry_days"]
        if not 0 <= expiry_days <= MAX_EXPIRY_DAYS:
            raise CommandError(f"--expiry-days must be 0 (never) to {MAX_EXPIRY_DAYS}.")

        with transaction.atomic():
            user, created = get_user_model().objects.get_or_create(username=username)
            if created:
                user.set_unusable_password()
            if options["staff"]:
                user.is_staff = True
            user.save()
            any_customer = _permission("act_for_any_customer")
            if options["service"]:
                user.user_permissions.add(any_customer)
                ApiClient.objects.filter(user=user).delete()
            elif customer_id is not None:
                user.user_permissions.remove(any_customer)
                ApiClient.objects.update_or_create(user=user, defaults={"customer_id": customer_id})
            if options["view_customer_pii"]:
                user.user_permissions.add(_permission("view_customer_pii"))
            expiry = dt.timedelta(days=expiry_days) if expiry_days else None
            auth_token, token = AuthToken.objects.create(user=user, expiry=expiry)

        user = get_user_model().objects.get(pk=user.pk)  # fresh: permissions are cached per instance
        expires = f"expires {auth_token.expiry:%Y-%m-%d %H:%M} UTC" if auth_token.expiry else "never expires"
        self.stderr.write(
            f"{'created' if created else 'existing'} {'staff ' if user.is_staff else ''}user {username!r}, "
            f"{_describe(client_scope(user=user))}; new token {token[:8]}..., {expires}:"
        )
        self.stdout.write(token)
