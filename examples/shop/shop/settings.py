"""Settings of the shop: a fresh `startproject`, plus what docs/installation.md (step 3) asks for, and nothing else."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("SHOP_SECRET_KEY", "shop-development-only-secret-key-0123456789")
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_q",
    "qbo_sync",
    "shop",
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

ROOT_URLCONF = "shop.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_DATABASE", str(BASE_DIR / "shop.sqlite3")),
        # Web and worker processes write at the same time (docs/installation.md, step 3).
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}

Q_CLUSTER = {"name": "shop", "workers": 2, "timeout": 300, "retry": 360, "max_attempts": 2, "catch_up": False,
             "orm": "default"}

# --- qbo_sync ---------------------------------------------------------------------------------------------------
QBO_SYNC_ORGANIZATION_MODEL = "shop.Store"
QBO_SYNC = {
    "HOST_LABEL": "Shop",
    "ENTITY_ADAPTERS": {
        "Customer": "shop.qbo.CustomerAdapter",
        "Item": "shop.qbo.ItemAdapter",
        "Invoice": "shop.qbo.InvoiceAdapter",
    },
    "ORGANIZATION_RESOLVER": "shop.qbo.stores_for_user",
    "CLIENT_ID": os.environ.get("QBO_CLIENT_ID", "shop-client"),
    "CLIENT_SECRET": os.environ.get("QBO_CLIENT_SECRET", "shop-secret"),
    "REDIRECT_URI": os.environ.get("QBO_REDIRECT_URI", "http://127.0.0.1:8000/qbo/oauth/callback/"),
    "ENVIRONMENT": os.environ.get("QBO_ENVIRONMENT", "local"),
    # The bundled sandbox on another port (run_from_wheel.py starts it on a free one).
    "API_BASE_URL": os.environ.get("QBO_API_BASE_URL", "http://127.0.0.1:8765"),
}
