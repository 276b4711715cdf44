"""The environment that points a child process at the servers this Django process uses.

A benchmark or a test starts the service's real commands (gunicorn, celery) as
children; they must reach the same PostgreSQL database (the test database, when
pytest-django made one), Redis and Celery broker as the parent, whatever the
parent's settings module.
"""

from django.conf import settings
from django.db import connection


def servers_env() -> dict[str, str]:
    database = connection.settings_dict
    return {
        "POSTGRES_SERVER": str(database["HOST"]),
        "POSTGRES_PORT": str(database["PORT"]),
        "POSTGRES_USER": str(database["USER"]),
        "POSTGRES_PASSWORD": str(database["PASSWORD"]),
        "POSTGRES_DB": str(database["NAME"]),
        "REDIS_HOST": settings.REDIS_HOST,
        "REDIS_PORT": str(settings.REDIS_PORT),
        "REDIS_DB": str(settings.REDIS_DB),
        "REDIS_USERS_DB": str(settings.REDIS_USERS_DB),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
