"""manage.py revoke_api_tokens NAME [--token PREFIX]: delete API tokens; they stop working at once."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from knox.models import AuthToken
from knox.settings import CONSTANTS

MIN_PREFIX = 8


class Command(BaseCommand):
    help = (
        "Revoke every API token of the user NAME, or with --token only the one whose key starts "
        "with PREFIX (the first characters create_api_token printed). The user and its scope stay: "
        "create_api_token NAME gives it a new token."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--token",
            dest="prefix",
            metavar="PREFIX",
            help=f"Revoke only this token: at least its first {MIN_PREFIX} characters, or all of it.",
        )

    def handle(self, *args: Any, username: str, prefix: str | None, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        tokens = AuthToken.objects.filter(user=user)
        if prefix is not None:
            if len(prefix) < MIN_PREFIX:
                raise CommandError(f"--token needs at least the first {MIN_PREFIX} characters of the token.")
            # knox keeps the first TOKEN_KEY_LENGTH characters in clear to find a token.
            tokens = tokens.filter(token_key__startswith=prefix[: CONSTANTS.TOKEN_KEY_LENGTH])
        count, _ = tokens.delete()
        if prefix is not None and count == 0:
            raise CommandError(f"User {username!r} has no token starting with {prefix[:MIN_PREFIX]!r}.")
        self.stdout.write(f"revoked {count} token{'' if count == 1 else 's'} of {username!r}")
