# Load the Celery app with Django so @shared_task and on-commit kicks use it.
from orders_project.celery import app as celery_app

__all__ = ["celery_app"]
