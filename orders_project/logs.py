"""How every process logs: one JSON object per line in production, readable text in `make dev`.

LOG_FORMAT=json|text picks the format (default: text when DJANGO_DEBUG is on, as under
`make dev`, json otherwise). A JSON line has `time` (RFC 3339, UTC), `level`, `logger`,
`message`, `trace_id`, `span_id`, `request_id` (null outside a request or span), and the
ids a call site passes with `extra=` (`order_id`, `event_id`, ...); a traceback goes in
`exc_info`. python-json-logger does the encoding (it copes with any `extra` value and
exception info); this module adds the ids and keeps secrets out:

* Django's `request` extra (on django.request / django.server records) is left out:
  its text holds the full URL with the query string.
* What still looks like a credential in a line (`Token abc...`, `Bearer ...`,
  `password=...`, a URL's `user:password@`) is replaced by `[redacted]`.

LOG_CELERY_TASKS=true brings back Celery's per-task INFO lines (`received`,
`succeeded`, beat's `Sending due task`), off by default: the relay sweep runs every
second, and two lines a second bury what matters. Task failures are logged either way.
"""

import datetime as dt
import logging
import logging.config
import re
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from orders_project.env import env_bool, env_str

FORMATS = ("json", "text")
# The id of the request this thread serves (set by orders_project.request_ids).
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# Celery's per-task lines: each task received and succeeded, each beat entry sent.
CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace", "celery.beat")

_SECRETS = [
    (re.compile(r"(?i)\b(token|bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1\2[redacted]"),
    (
        re.compile(
            r"(?i)\b(password|passwd|secret|api[_-]?key|access[_-]?token)(\\?[\"']?\s*[:=]\s*\\?[\"']?)[^\s\"'\\,&;]+"
        ),
        r"\1\2[redacted]",
    ),
    (re.compile(r"(://[^/\s:@\"]*:)[^@/\s\"]+@"), r"\1[redacted]@"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def log_format() -> str:
    default = "text" if env_bool("DJANGO_DEBUG", False) else "json"
    value = env_str("LOG_FORMAT", default).strip().lower()
    if value not in FORMATS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"Environment variable LOG_FORMAT must be one of {', '.join(FORMATS)}, not {value!r}."
        )
    return value


class ContextFilter(logging.Filter):
    """Adds `trace_id` and `span_id` (of the current span) and `request_id` to every record,
    unless the call site passed them."""

    def filter(self, record: logging.LogRecord) -> bool:
        # django.request logs a 4xx/5xx after the middleware returned: the request holds its ids.
        request_ids = getattr(getattr(record, "request", None), "log_ids", None)
        if request_ids is not None and not hasattr(record, "trace_id"):
            record.trace_id, record.span_id, record.request_id = request_ids
        if not hasattr(record, "trace_id"):
            span_context = trace.get_current_span().get_span_context()
            if span_context.is_valid:
                record.trace_id = f"{span_context.trace_id:032x}"
                record.span_id = f"{span_context.span_id:016x}"
            else:
                record.trace_id = record.span_id = None
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(_JsonFormatter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            reserved_attrs=[*RESERVED_ATTRS, "request", "server_time"],
            json_ensure_ascii=False,
            **kwargs,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class TextFormatter(logging.Formatter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s  %(message)s", datefmt="%H:%M:%S", **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def logging_configure(config: dict[str, Any]) -> None:
    """settings.LOGGING_CONFIG: dictConfig, and Python warnings through logging (logger
    `py.warnings`), so a warning is a JSON line too instead of raw text on stderr."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def logging_config(*, level: str, fmt: str, celery_tasks: bool) -> dict[str, Any]:
    """The LOGGING dict of the Django settings (every process kind applies it through Django)."""
    task_level = "INFO" if celery_tasks else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "orders_project.logs.ContextFilter"}},
        "formatters": {
            "json": {"()": "orders_project.logs.JsonFormatter"},
            "text": {"()": "orders_project.logs.TextFormatter"},
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "kafka": {"level": "WARNING"},
            **{name: {"level": task_level} for name in CELERY_TASK_LOGGERS},
        },
    }
