from django.apps import AppConfig


class UsersCacheConfig(AppConfig):
    name = "users_cache"
    verbose_name = "User cache"

    def ready(self) -> None:
        # Here, not in a system check: ready() runs in every process kind (gunicorn
        # loads the WSGI app, Celery's Django fix-up and manage.py call django.setup()),
        # while system checks run only for manage.py commands, never under gunicorn
        # or Celery. The check never raises and waits at most a few seconds.
        from users_cache.eviction import redis_eviction_check

        redis_eviction_check()
