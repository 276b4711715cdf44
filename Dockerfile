# Container image for every process kind (web, worker, beat, consumer): the
# command differs, the image does not.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=orders_project.settings

WORKDIR /app
COPY requirements/base.txt requirements/base.txt
RUN pip install --no-cache-dir -r requirements/base.txt

COPY manage.py ./
COPY orders_project orders_project
COPY orders orders
COPY outbox outbox
COPY users_cache users_cache

RUN useradd --system --uid 10001 app
USER 10001

EXPOSE 8000
# runserver is a placeholder until the deployment issue adds a WSGI server.
CMD ["python", "manage.py", "runserver", "0.0.0.0:8000", "--noreload"]
