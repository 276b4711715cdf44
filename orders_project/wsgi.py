import os
import sys

from django.core.wsgi import get_wsgi_application

from orders_project.tracing import tracing_instrument, tracing_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_project.settings")
# Before the middleware chain is built: the Django instrumentation adds its middleware
# (only when an OTLP endpoint is set). gunicorn starts the exporter in each worker
# (post_fork, orders_project/gunicorn_conf.py); any other server (runserver) here.
tracing_instrument("web")
if "gunicorn.arbiter" not in sys.modules:
    tracing_start("web")
application = get_wsgi_application()
