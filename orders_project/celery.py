"""The Celery app. Configuration comes from Django settings (CELERY_* names),
the beat schedule included (CELERY_BEAT_SCHEDULE): django-celery-beat's
database scheduler installs it into its tables when beat starts (update or
create, so starting beat twice changes nothing), where staff see it in the admin."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_project.settings")

app = Celery("orders_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
