"""Settings for the Batchly host project.

Everything a deployment changes comes from the environment (django-environ), so scripts, CI and the demo set the
same names: DATABASE_URL, REDIS_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, TIME_ZONE and the QBO_* settings.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# A checkout without SECRET_KEY in its environment is a development one: it gets the development key below and
# DEBUG on. A deployment sets SECRET_KEY (DEBUG then defaults to off); with DEBUG off, a development key, empty
# QBO_TOKEN_KEYS or an empty webhook verifier stop every command with a system check error (qbo_sync.E014-E016).
SECRET_KEY = env("SECRET_KEY", default="django-insecure-batchly-development-key-change-me-0123456789")
DEBUG = env.bool("DEBUG", default="SECRET_KEY" not in env.ENVIRON)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "qbo_sync",
    "batchly",
    # Development harnesses (manage.py bench, manage.py chaos): a top-level package of this repository, not in the
    # qbo_sync wheel.
    "benchmarks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "batchly.urls"
WSGI_APPLICATION = "batchly.wsgi.application"
ASGI_APPLICATION = "batchly.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# --- Database -------------------------------------------------------------------------------------------------
# SQLite is the embedded default. A web process and a django-q2 cluster share it, which needs WAL (readers do not
# block the writer), a busy timeout, and BEGIN IMMEDIATE: without it a read-then-write transaction upgrades its lock
# late and fails with "database is locked" under concurrent workers, whatever the timeout.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        }
    )
    DATABASES["default"].setdefault("TEST", {})
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

LOGIN_URL = "admin:login"

# --- Security (production values come from the environment) -------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None

# --- DRF ---------------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Batchly ↔ QuickBooks sync API",
    "DESCRIPTION": "Progress, jobs, conflicts and connection status of the QuickBooks Online sync.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/schema/ and /api/docs/: open while DEBUG is on, for signed-in users only otherwise.
    "SERVE_PERMISSIONS": ["qbo_sync.api.permissions.AuthenticatedOutsideDebug"],
    # Swagger UI's files come from drf-spectacular-sidecar (static files), not a CDN: /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- django-q2 ---------------------------------------------------------------------------------------------------
# The safe setup (docs/operations.md): our own queue tables are the source of truth and tasks only trigger drains,
# so a task may be lost or repeated without losing or doubling work. timeout < retry, so a running drain is never
# handed to a second worker; bounded attempts; a small queue so tasks do not wait out their retry in memory.
Q_CLUSTER = {
    "name": "batchly",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 300,
    "retry": 360,
    "max_attempts": 2,
    "ack_failures": True,
    "queue_limit": env.int("Q_WORKERS", default=2),
    "save_limit": 500,
    "catch_up": False,
    "recycle": 200,
    "max_rss": 250_000,
    "poll": 0.5,
    "time_zone": TIME_ZONE,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- QuickBooks Online ------------------------------------------------------------------------------------------
# The host model qbo_sync's rows belong to (its tenant). Like AUTH_USER_MODEL, set it before the first migrate.
QBO_SYNC_ORGANIZATION_MODEL = "batchly.Organization"

_QBO_ENVIRONMENT = env("QBO_ENVIRONMENT", default="local")

# qbo_sync's settings, all in one dict (qbo_sync's docs/installation.md lists every key and its default); the
# environment variables keep their QBO_* names.
QBO_SYNC = {
    "ENVIRONMENT": _QBO_ENVIRONMENT,
    # The bundled sandbox accepts any keys: development gets placeholders, Intuit's environments need the real ones.
    "CLIENT_ID": env("QBO_CLIENT_ID", default="batchly-local" if _QBO_ENVIRONMENT == "local" else ""),
    "CLIENT_SECRET": env("QBO_CLIENT_SECRET", default="batchly-local-secret" if _QBO_ENVIRONMENT == "local" else ""),
    "REDIRECT_URI": env("QBO_REDIRECT_URI", default="http://127.0.0.1:8000/qbo/oauth/callback/"),
    "API_BASE_URL": env("QBO_API_BASE_URL", default=""),
    "AUTH_BASE_URL": env("QBO_AUTH_BASE_URL", default=""),
    "MINOR_VERSION": env.int("QBO_MINOR_VERSION", default=75),
    "TOKEN_KEYS": env.list("QBO_TOKEN_KEYS", default=[]),
    "WEBHOOK_VERIFIER_TOKEN": env("QBO_WEBHOOK_VERIFIER_TOKEN", default=""),
    "HOST_LABEL": "Batchly",
    "ENTITY_ADAPTERS": {
        "Customer": "batchly.qbo_adapters.CustomerAdapter",
        "Item": "batchly.qbo_adapters.ItemAdapter",
        "Invoice": "batchly.qbo_adapters.InvoiceAdapter",
    },
    "ORGANIZATION_LOOKUP_FIELD": "slug",
    "ORGANIZATION_RESOLVER": "batchly.qbo_adapters.organizations_for_user",
    # Who may do what: the membership role (viewer / operator / accountant / owner), see docs/security.md.
    "PERMISSION_CHECKER": "batchly.qbo_adapters.may_act",
    "CRITICAL_FIELDS": {"Customer": env.list("QBO_CRITICAL_CUSTOMER_FIELDS", default=[])},
    "INCOME_ACCOUNT_NAME": env("QBO_INCOME_ACCOUNT_NAME", default="Sales of Product Income"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
    "loggers": {"qbo_sync": {"level": env("QBO_SYNC_LOG_LEVEL", default="INFO"), "propagate": True}},
}
