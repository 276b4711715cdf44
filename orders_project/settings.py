"""Settings for the order service, read from the environment only.

The variable names are a contract with deployments (docs/configuration.md).
Nothing here starts a server: `make dev` and `make test` decide where the
servers come from and pass their addresses in through these variables.
"""

import datetime as dt
from pathlib import Path
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured

from orders_project.client_ip import trusted_proxies_configure
from orders_project.env import env_bool, env_int, env_list, env_rate, env_str
from orders_project.logs import log_format, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
if DEBUG:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY", "django-insecure-dev-only-key")
else:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("Environment variable DJANGO_SECRET_KEY must be at least 50 characters long.")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1"] if DEBUG else [])
# The chart passes the pod's own IP (downward API), so a request addressed to the pod
# itself (a sidecar, a port-forward) is not refused. /metrics no longer needs it: it is
# served on METRICS_PORT, outside Django. Probes need no such entry either:
# orders_project.health answers them before the host check.
if env_str("POD_IP", "-") != "-":
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, env_str("POD_IP")]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    # API tokens: stored as SHA-512 digests, with an expiry, revocable one by one.
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    # Login lockout for /admin/ and /api-auth/login/ (failed attempts in PostgreSQL).
    "axes",
    "orders",
    "outbox",
    "users_cache",
]

MIDDLEWARE = [
    # First: probes are answered before the host check and the HTTPS redirect
    # (a kubelet sends the pod IP as Host); see orders_project/health.py.
    "orders_project.health.HealthCheckMiddleware",
    # traceparent and X-Request-Id on every other response, and in its log lines.
    "orders_project.request_ids.TraceContextMiddleware",
    "orders_project.http_metrics.HttpMetricsBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files straight after the security headers, before sessions and auth.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "orders_project.http_metrics.HttpMetricsAfterMiddleware",
    # Last, as django-axes asks: turns a lockout into its response.
    "axes.middleware.AxesMiddleware",
]

# Axes first: it refuses a locked-out login before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Password guessing on the login pages: after AXES_FAILURE_LIMIT failures for one
# username from one address, that pair is locked for AXES_COOLOFF_MINUTES. Keyed on
# the pair so an attacker cannot lock a staff member out from elsewhere.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "orders_project.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "orders_project.api.errors.lockout_response"

ROOT_URLCONF = "orders_project.urls"
WSGI_APPLICATION = "orders_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide template overrides (orders_project/templates/).
        "DIRS": [BASE_DIR / "orders_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- PostgreSQL -------------------------------------------------------------
# Outside DEBUG the server must be named: a production process must not quietly
# connect to whatever listens on localhost.
POSTGRES_SERVER = env_str("POSTGRES_SERVER", "127.0.0.1" if DEBUG else None)
DATABASES = {
    "default": {
        "ENGINE": "django_prometheus.db.backends.postgresql",
        "HOST": POSTGRES_SERVER,
        "PORT": env_int("POSTGRES_PORT", 5432, minimum=1, maximum=65535),
        "USER": env_str("POSTGRES_USER", "postgres"),
        "PASSWORD": env_str("POSTGRES_PASSWORD", ""),
        "NAME": env_str("POSTGRES_DB", "orders"),
        # Transactions are opened by the services, where they are visible.
        "ATOMIC_REQUESTS": False,
        "CONN_MAX_AGE": env_int("POSTGRES_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        # Behind PgBouncer in transaction mode a server-side cursor (.iterator())
        # cannot survive between transactions: set this to true there.
        "DISABLE_SERVER_SIDE_CURSORS": env_bool("POSTGRES_DISABLE_SERVER_SIDE_CURSORS", False),
        "OPTIONS": {
            "connect_timeout": 5,
            # A primary whose host vanishes (a node lost, a failover) answers nothing,
            # not even a reset: without these the kernel retransmits for ~15 minutes
            # and a query, or the readiness check, waits that long. Keepalives find a
            # silent peer on an idle connection; tcp_user_timeout bounds how long sent
            # data may stay unacknowledged, and caps the keepalive probing too (Linux).
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": env_int("POSTGRES_TCP_USER_TIMEOUT_MS", 20_000),
            # One slow query or lock wait must not hold a web worker (or a task)
            # forever: PostgreSQL cancels it and the request fails with a clear
            # error. 0 turns a limit off (the migrations Job does, for long DDL).
            "options": "-c statement_timeout={} -c lock_timeout={}".format(
                env_int("POSTGRES_STATEMENT_TIMEOUT_MS", 30_000), env_int("POSTGRES_LOCK_TIMEOUT_MS", 5_000)
            ),
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis --------------------------------------------------------------------
REDIS_HOST = env_str("REDIS_HOST", "127.0.0.1")
REDIS_PORT = env_int("REDIS_PORT", 6379, minimum=1, maximum=65535)
REDIS_DB = env_int("REDIS_DB", 0, maximum=15)
# The user replica has a database of its own: the cache's FLUSHDB (cache.clear())
# must never wipe it, and production puts it (with the broker) on a Redis with
# maxmemory-policy noeviction, which a cache does not need.
REDIS_USERS_DB = env_int("REDIS_USERS_DB", (REDIS_DB + 2) % 16, maximum=15)
REDIS_PASSWORD = env_str("REDIS_PASSWORD", "")
# Escaped: a password with '@', ':' or '/' would otherwise be cut at that character.
_redis_auth = f":{quote(REDIS_PASSWORD, safe='')}@" if REDIS_PASSWORD else ""


def _redis_url(db: int) -> str:
    return f"redis://{_redis_auth}{REDIS_HOST}:{REDIS_PORT}/{db}"


REDIS_URL = _redis_url(REDIS_DB)
# Fail fast: a Redis outage must become a 503, not a hung request.
_REDIS_OPTIONS = {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2}
# What a request may spend on one Redis command (connect, then answer) before it
# goes on without it: the throttle lets the request through, the user check
# answers 503. A Redis that drops packets would otherwise cost every request the
# 2 s above. A healthy Redis answers in well under a millisecond here.
REDIS_REQUEST_TIMEOUT_SECONDS = env_int("REDIS_REQUEST_TIMEOUT_MS", 50, minimum=1) / 1000
_REDIS_REQUEST_OPTIONS = {
    "SOCKET_CONNECT_TIMEOUT": REDIS_REQUEST_TIMEOUT_SECONDS,
    "SOCKET_TIMEOUT": REDIS_REQUEST_TIMEOUT_SECONDS,
}
# One pool per address and timeouts (django-redis alone keys pools by address only).
DJANGO_REDIS_CONNECTION_FACTORY = "orders_project.redis_pools.TimeoutKeyedConnectionFactory"
CACHES = {
    # The throttles' counters (orders_project/api/throttles.py): on every request's path.
    "default": {
        "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": _REDIS_REQUEST_OPTIONS,
    },
    # The replica of the user stream, as the consumer writes it (users_cache/store.py
    # is its only user): batches of scripts, which may take longer than a lookup.
    "users": {
        "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
        "LOCATION": _redis_url(REDIS_USERS_DB),
        "OPTIONS": _REDIS_OPTIONS,
    },
    # The same replica, read on a request's path (the user check of a create).
    "users_lookup": {
        "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
        "LOCATION": _redis_url(REDIS_USERS_DB),
        "OPTIONS": _REDIS_REQUEST_OPTIONS,
    },
}
# Kept for compatibility: it may bound cached lookups, never a live user's replica
# (live users do not expire; only deletion tombstones and event-id markers do).
USER_CACHE_TTL = env_int("USER_CACHE_TTL", 86400, minimum=1)
# A user event dated further ahead than this is refused (dead-lettered): kept, it
# would make every later update of that user look stale.
USER_EVENT_MAX_FUTURE_SKEW_SECONDS = env_int("USER_EVENT_MAX_FUTURE_SKEW_SECONDS", 300, minimum=0)

# --- Kafka ------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env_list("KAFKA_BOOTSTRAP_SERVERS", ["localhost:9092"])
# How long a Kafka client waits for a connection or one answer; the producer's delivery
# timeout, and so the relay's wait for a batch's acknowledgements, is twice this. Short on
# purpose: a broker that is down must fail a relay run within seconds, never hang a worker.
KAFKA_REQUEST_TIMEOUT_MS = env_int("KAFKA_REQUEST_TIMEOUT_MS", 5000, minimum=100)
KAFKA_CONSUMER_GROUP_ID = env_str("KAFKA_CONSUMER_GROUP_ID", "order-service")
KAFKA_TOPIC_PARTITIONS = env_int("KAFKA_TOPIC_PARTITIONS", 3, minimum=1)
# Dev defaults; production uses replication 3 with min.insync.replicas 2, so an
# acks=all write survives one broker down and is refused rather than kept on one copy.
KAFKA_TOPIC_REPLICATION_FACTOR = env_int("KAFKA_TOPIC_REPLICATION_FACTOR", 1, minimum=1)
KAFKA_TOPIC_MIN_INSYNC_REPLICAS = env_int("KAFKA_TOPIC_MIN_INSYNC_REPLICAS", 1, minimum=1)
# Event type -> topic name. Event types are the contract; topic names may differ
# per deployment.
KAFKA_TOPICS = {
    "order.created": env_str("KAFKA_TOPIC_ORDER_CREATED", "order.created"),
    "order.confirmed": env_str("KAFKA_TOPIC_ORDER_CONFIRMED", "order.confirmed"),
    "order.shipped": env_str("KAFKA_TOPIC_ORDER_SHIPPED", "order.shipped"),
    "order.cancelled": env_str("KAFKA_TOPIC_ORDER_CANCELLED", "order.cancelled"),
    # Written only by `manage.py outbox_reconcile --publish` after a database restore.
    "order.voided": env_str("KAFKA_TOPIC_ORDER_VOIDED", "order.voided"),
    "user.created": env_str("KAFKA_TOPIC_USER_CREATED", "user.created"),
    "user.updated": env_str("KAFKA_TOPIC_USER_UPDATED", "user.updated"),
    "user.deleted": env_str("KAFKA_TOPIC_USER_DELETED", "user.deleted"),
}
# Where the user-event consumer copies messages it cannot apply.
KAFKA_TOPIC_USER_EVENTS_DLQ = env_str("KAFKA_TOPIC_USER_EVENTS_DLQ", "user.events.dlq")

# --- Order lifecycle and outbox -----------------------------------------------
ORDER_CONFIRM_DELAY = env_int("ORDER_CONFIRM_DELAY", 30)
ORDER_SHIP_DELAY = env_int("ORDER_SHIP_DELAY", 120)
ORDER_PROCESSOR_INTERVAL = env_int("ORDER_PROCESSOR_INTERVAL", 10, minimum=1)
ORDER_REQUIRE_KNOWN_USER = env_bool("ORDER_REQUIRE_KNOWN_USER", True)
OUTBOX_BATCH_SIZE = env_int("OUTBOX_BATCH_SIZE", 500, minimum=1, maximum=10000)
OUTBOX_POLL_INTERVAL_SECONDS = env_int("OUTBOX_POLL_INTERVAL_SECONDS", 1, minimum=1)
OUTBOX_MAX_RETRY_ATTEMPTS = env_int("OUTBOX_MAX_RETRY_ATTEMPTS", 5, minimum=1)
# Retry n waits about BASE * 2^(n-1) seconds (with jitter), never more than MAX.
OUTBOX_BACKOFF_BASE_SECONDS = env_int("OUTBOX_BACKOFF_BASE_SECONDS", 1, minimum=0)
OUTBOX_BACKOFF_MAX_SECONDS = env_int("OUTBOX_BACKOFF_MAX_SECONDS", 60, minimum=0)
# A relay leases a key while it sends it; one that died holds its keys this long at
# most before another relay takes them over (longer than the 10 s Kafka ack timeout).
OUTBOX_RELAY_LEASE_SECONDS = env_int("OUTBOX_RELAY_LEASE_SECONDS", 15, minimum=1)
# Dead rows set back to pending automatically (outbox/resubmission.py): each at most this many
# times (0: never, staff decide), once this long after its last failure. For refusals that
# outlast the retry budget and then go away; staff are needed only for rows Kafka keeps refusing.
OUTBOX_DEAD_RESUBMIT_MAX = env_int("OUTBOX_DEAD_RESUBMIT_MAX", 0, minimum=0, maximum=1000)
OUTBOX_DEAD_RESUBMIT_AFTER_SECONDS = env_int("OUTBOX_DEAD_RESUBMIT_AFTER_SECONDS", 900, minimum=1)
OUTBOX_RETENTION_DAYS = env_int("OUTBOX_RETENTION_DAYS", 7, minimum=0)
# Daily partitions made this many days ahead of today (outbox/retention.py): a run that
# cannot get its lock has that many days of hourly retries before rows fall into the default.
OUTBOX_PARTITIONS_AHEAD_DAYS = env_int("OUTBOX_PARTITIONS_AHEAD_DAYS", 3, minimum=1)
# How long creating or dropping a partition waits for its lock on the outbox table: every
# statement on the outbox queues behind the waiting DDL, so this is the longest stall it
# may cause; a partition not made or dropped is retried on the next run.
OUTBOX_PARTITION_LOCK_TIMEOUT_MS = env_int("OUTBOX_PARTITION_LOCK_TIMEOUT_MS", 500, minimum=1)
# The delivery auditor (outbox/audit_window.py): every INTERVAL seconds (0: never) beat reads
# back from Kafka the next BATCH_SIZE rows published in the last WINDOW_MINUTES, round and round.
OUTBOX_AUDIT_INTERVAL_SECONDS = env_int("OUTBOX_AUDIT_INTERVAL_SECONDS", 60, minimum=0)
OUTBOX_AUDIT_BATCH_SIZE = env_int("OUTBOX_AUDIT_BATCH_SIZE", 1000, minimum=1, maximum=100000)
OUTBOX_AUDIT_WINDOW_MINUTES = env_int("OUTBOX_AUDIT_WINDOW_MINUTES", 60, minimum=1)

# --- Celery -----------------------------------------------------------------
# The broker gets its own Redis database so the cache's FLUSHDB never eats tasks.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", _redis_url((REDIS_DB + 1) % 16))
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
# A relay run spends at most a few seconds; anything near these limits is stuck.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 90, minimum=1)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing a task must not hang a web request when the broker is down.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 2, "max_retries": 1}
# kombu's Redis transport, with a worker that survives a Redis restart (orders_project/celery_broker.py).
CELERY_BROKER_TRANSPORT = "orders_project.celery_broker:Transport"
# django-celery-beat's DatabaseScheduler, touching HEARTBEAT_FILE on every tick.
CELERY_BEAT_SCHEDULER = "orders_project.beat_scheduler:HeartbeatDatabaseScheduler"
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 2, minimum=1)
# Worker and beat log through LOGGING below (JSON or text), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    # The safety net behind the on-commit kick: picks up retries and anything a kick missed.
    "outbox-relay-sweep": {
        "task": "outbox.relay",
        "schedule": float(OUTBOX_POLL_INTERVAL_SECONDS),
        # A sweep still queued after a few intervals is superseded by a newer one.
        "options": {"expires": float(OUTBOX_POLL_INTERVAL_SECONDS) * 5},
    },
    "outbox-retention": {"task": "outbox.retention", "schedule": 3600.0},
    # Does nothing (no query) while OUTBOX_DEAD_RESUBMIT_MAX is 0; scheduled anyway, so turning
    # it on is a setting, not a schedule change. A run is a few bounded statements.
    "outbox-resubmit-dead": {"task": "outbox.resubmit_dead", "schedule": 60.0, "options": {"expires": 60.0}},
    "orders-purge-idempotency-keys": {"task": "orders.purge_idempotency_keys", "schedule": 3600.0},
    "orders-advance": {
        "task": "orders.advance",
        "schedule": float(ORDER_PROCESSOR_INTERVAL),
        "options": {"expires": float(ORDER_PROCESSOR_INTERVAL)},
    },
}
if OUTBOX_AUDIT_INTERVAL_SECONDS:
    CELERY_BEAT_SCHEDULE["outbox-audit"] = {
        "task": "outbox.audit",
        "schedule": float(OUTBOX_AUDIT_INTERVAL_SECONDS),
        # A run still queued when the next is due is superseded by it.
        "options": {"expires": float(OUTBOX_AUDIT_INTERVAL_SECONDS)},
    }

# --- API --------------------------------------------------------------------
# django-rest-knox keeps only a SHA-512 digest of each token. Clients keep sending
# `Authorization: Token <key>`; tokens come from `manage.py create_api_token`, which
# sets each one's expiry (--expiry-days), so knox's TOKEN_TTL is never used.
REST_KNOX = {"AUTH_HEADER_PREFIX": "Token"}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "orders.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # UTF-8 JSON only, nesting depth bounded before parsing (a deep body is a 400, not a RecursionError).
    "DEFAULT_PARSER_CLASSES": ["orders_project.api.parsers.StrictJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "orders_project.api.pagination.SkipLimitPagination",
    "EXCEPTION_HANDLER": "orders_project.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["orders_project.api.throttles.ClientRateThrottle"],
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
    "COERCE_DECIMAL_TO_STRING": True,
}
# An Idempotency-Key claim of an older release (IN_PROGRESS, written before the work)
# whose request has not finished after this long belongs to a crashed process and is
# taken over (orders/idempotency.py; this release writes no claims).
IDEMPOTENCY_STALE_CLAIM_SECONDS = 300
# Rate limits and login lockout count clients by their address (orders_project/client_ip.py):
# X-Forwarded-For is read only from the proxies FORWARDED_ALLOW_IPS names (the list
# gunicorn reads itself for X-Forwarded-Proto: one list for both), at most
# API_NUM_PROXIES entries deep (1 behind an ingress; 0: the peer is the client).
# Settings that contradict each other stop the start, naming the variable.
API_NUM_PROXIES = env_int("API_NUM_PROXIES", 0, maximum=10)
API_TRUSTED_PROXIES = trusted_proxies_configure(
    forwarded_allow_ips=env_str("FORWARDED_ALLOW_IPS", ""), num_proxies=API_NUM_PROXIES
)
# /api/v1/health/ready shows which check failed only to callers inside the cluster
# (no proxy header, a private peer address); on, it shows it to everyone.
HEALTH_DETAIL_PUBLIC = env_bool("HEALTH_DETAIL_PUBLIC", False)
# How long a web process may serve a token lookup's rows from memory (orders/api/token_cache.py):
# changes through the ORM end it at once (the auth epoch); others at most this late. 0: no cache.
AUTH_TOKEN_CACHE_SECONDS = env_int("AUTH_TOKEN_CACHE_SECONDS", 5, minimum=0, maximum=300)
# Per-client rates (orders_project/api/throttles.py); 429 with Retry-After beyond them.
API_THROTTLE_RATES = {
    "write": env_rate("API_THROTTLE_WRITE_RATE", "600/min"),
    "read": env_rate("API_THROTTLE_READ_RATE", "3000/min"),
    "anon": env_rate("API_THROTTLE_ANON_RATE", "120/min"),
    # Failed authentications (401) per client address; each costs a token lookup.
    "auth_failure": env_rate("API_THROTTLE_AUTH_FAILURE_RATE", "30/min"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Order service API",
    "DESCRIPTION": "Create, list, read and cancel customer orders. Every error has the shape "
    '`{"code", "message", "details"}`.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"OrderStatusEnum": "orders.models.OrderStatus"},
    # Swagger UI and Redoc from the drf-spectacular-sidecar app: pinned, served by
    # this service, nothing loaded from a CDN (works with no internet).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Security (see README "Deployment checks") ----------------------------------
# Trust X-Forwarded-Proto only when told to: a client that reaches the app
# without the proxy could otherwise claim HTTPS. The proxy must overwrite it.
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
# A browser session's missing or bad CSRF token: 403 in the API's one error shape.
CSRF_FAILURE_VIEW = "orders_project.api.errors.csrf_failure_view"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Filled by `manage.py collectstatic` at image build; WhiteNoise serves it.
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed files with content-hashed names (cached forever by browsers).
    # Needs collectstatic to have run; DEBUG (make dev) serves the sources as they are.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# JSON lines (production) or text (make dev), with trace, span and request ids: orders_project/logs.py.
LOGGING_CONFIG = "orders_project.logs.logging_configure"
LOGGING = logging_config(
    level=env_str("LOG_LEVEL", "INFO"), fmt=log_format(), celery_tasks=env_bool("LOG_CELERY_TASKS", False)
)
