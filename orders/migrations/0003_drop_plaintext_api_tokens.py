"""Remove the plaintext API tokens of rest_framework.authtoken (replaced by knox).

The app is no longer installed, so its table would stay behind with every old
token readable in clear text. Those tokens were also listed in the admin, so
they are treated as exposed and not carried over: clients get new tokens from
`manage.py create_api_token`, which also gives each its scope.

Its rows in django_migrations go too, so an older release rolled back onto this
database recreates the (empty) table with its own `migrate`. Reversing this
migration restores nothing: the old tokens are gone for good.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_api_clients_and_scopes")]

    operations = [
        migrations.RunSQL(
            sql=[
                "DROP TABLE IF EXISTS authtoken_token",
                "DELETE FROM django_migrations WHERE app = 'authtoken'",
            ],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
