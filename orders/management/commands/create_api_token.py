"""manage.py create_api_token USERNAME [--staff]: a user (created if needed) and its API token."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create the API user USERNAME if needed and print its token (the same token on every run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="Staff see and cancel every order.")

    def handle(self, *args: Any, username: str, staff: bool, **options: Any) -> None:
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
        if staff and not user.is_staff:
            user.is_staff = True
        user.save()
        token, _ = Token.objects.get_or_create(user=user)
        state = "created" if created else "existing"
        self.stderr.write(f"{state} {'staff ' if user.is_staff else ''}user {username!r}; token:")
        self.stdout.write(token.key)
