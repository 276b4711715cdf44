"""Upgrading from DRF's plaintext tokens: migration orders.0003 removes them for good."""

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

pytestmark = pytest.mark.django_db

OLD_KEY = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"


def _authtoken_migrations() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'authtoken'")
        return int(cursor.fetchone()[0])


def test_the_upgrade_drops_the_plaintext_tokens_and_lets_an_old_release_recreate_the_table(django_user_model):
    # given a database as the previous release left it: DRF's token table with a token, and its migrations
    user = django_user_model.objects.create(username="old-client")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL,"
            " user_id integer NOT NULL UNIQUE REFERENCES auth_user (id))"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [OLD_KEY, user.pk])
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES"
            " ('authtoken', '0001_initial', now()), ('authtoken', '0004_alter_tokenproxy_options', now())"
        )
    loader = MigrationLoader(connection)
    migration = loader.get_migration("orders", "0003_drop_plaintext_api_tokens")

    # when the migration runs
    with connection.schema_editor() as editor:
        migration.apply(loader.project_state(("orders", "0002_api_clients_and_scopes")), editor)

    # then the table and its migration records are gone (an older release's migrate would recreate it empty)
    assert "authtoken_token" not in connection.introspection.table_names()
    assert _authtoken_migrations() == 0


def test_the_upgrade_runs_on_a_database_that_never_had_drf_tokens():
    loader = MigrationLoader(connection)
    migration = loader.get_migration("orders", "0003_drop_plaintext_api_tokens")

    with connection.schema_editor() as editor:
        migration.apply(loader.project_state(("orders", "0002_api_clients_and_scopes")), editor)

    assert _authtoken_migrations() == 0
