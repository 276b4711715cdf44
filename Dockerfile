# One image for every process kind of the order service: web (the default
# command), Celery worker and beat, the user-event consumer, migrations and topic
# creation differ only in the command (docs/deploy.md lists them).
#
#   docker build -t order-service:TAG .
#
# Stage 1 builds a virtualenv from the pinned requirements; stage 2 copies only
# that venv and the service's packages (no compilers, no pip cache, no dev tools,
# no devstack/ or tests), collects static files, and runs as an unprivileged user.

# The base image is written out in both stages (not through an ARG) so scanners see the pinned tag.
# A current 3.13 patch release (security fixes in the interpreter and its bundled
# libraries); raise it with each Python maintenance release, both stages together.
FROM python:3.13.16-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements/base.txt /tmp/requirements.txt
# Wheels only: every pinned package ships a manylinux wheel, so no compiler is
# needed and a missing wheel fails the build instead of compiling something new.
RUN /opt/venv/bin/pip install --only-binary=:all: -r /tmp/requirements.txt

FROM python:3.13.16-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=orders_project.settings
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY manage.py ./
COPY orders_project orders_project
COPY orders orders
COPY outbox outbox
COPY users_cache users_cache
# collectstatic imports the settings, which refuse to start without these: the
# values exist only for this build step and are not kept in the image.
RUN DJANGO_SECRET_KEY=collectstatic-only-build-time-key-not-used-at-run-time-0000000 \
    POSTGRES_SERVER=unused.invalid \
    python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q orders_project orders outbox users_cache
USER 10001:10001
EXPOSE 8000
# Production WSGI server; its settings live in orders_project/gunicorn_conf.py.
CMD ["gunicorn", "--config", "python:orders_project.gunicorn_conf", "orders_project.wsgi"]
