from django.apps import AppConfig


class UsersCacheConfig(AppConfig):
    name = "users_cache"
    verbose_name = "User cache"
