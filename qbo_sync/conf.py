"""qbo_sync's settings, read lazily through one namespaced object.

Usage::

    from qbo_sync.conf import qbo_settings
    qbo_settings.API_BASE_URL

Values come from three places, first match wins:

1. the ``QBO_SYNC`` dict in Django settings (every option below; docs/installation.md lists them);
2. the older top-level names (``QBO_CLIENT_ID``, ``QBO_ENVIRONMENT``, ... in ``TOP_LEVEL``), still read;
3. the defaults below.

Unknown ``QBO_SYNC`` keys and dotted paths that do not import are reported by ``manage.py check``
(``qbo_sync.checks``); the paths themselves are imported only where they are used.

Nothing is read at import time; tests that use ``override_settings`` see the new values at once (the cache is
dropped on Django's ``setting_changed`` signal).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

#: Intuit's hosts for the two real environments. ``local`` is the bundled sandbox (``qbo_sync/sandbox``), which
#: serves both the API and the OAuth endpoints under one base URL.
INTUIT_ENVIRONMENTS: dict[str, dict[str, str]] = {
    "production": {
        "API_BASE_URL": "https://quickbooks.api.intuit.com",
        "AUTHORIZE_URL": "https://appcenter.intuit.com/connect/oauth2",
        "TOKEN_URL": "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        "REVOKE_URL": "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
    },
    "sandbox": {
        "API_BASE_URL": "https://sandbox-quickbooks.api.intuit.com",
        "AUTHORIZE_URL": "https://appcenter.intuit.com/connect/oauth2",
        "TOKEN_URL": "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        "REVOKE_URL": "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
    },
}
LOCAL_SANDBOX_URL = "http://127.0.0.1:8765"
ENVIRONMENTS = ("production", "sandbox", "local")

#: Top-level Django settings that map onto qbo_settings names.
TOP_LEVEL = {
    "CLIENT_ID": "QBO_CLIENT_ID",
    "CLIENT_SECRET": "QBO_CLIENT_SECRET",
    "REDIRECT_URI": "QBO_REDIRECT_URI",
    "ENVIRONMENT": "QBO_ENVIRONMENT",
    "MINOR_VERSION": "QBO_MINOR_VERSION",
    "TOKEN_KEYS": "QBO_TOKEN_KEYS",
    "WEBHOOK_VERIFIER_TOKEN": "QBO_WEBHOOK_VERIFIER_TOKEN",
    "REDIS_URL": "REDIS_URL",
}

DEFAULTS: dict[str, Any] = {
    # Connection
    "CLIENT_ID": "",
    "CLIENT_SECRET": "",
    "REDIRECT_URI": "",
    "ENVIRONMENT": "sandbox",
    "MINOR_VERSION": 75,
    "SCOPES": ["com.intuit.quickbooks.accounting"],
    "TOKEN_KEYS": [],  # Fernet keys, newest first; empty = derived from SECRET_KEY (development only)
    "WEBHOOK_VERIFIER_TOKEN": "",
    "WEBHOOK_MAX_BYTES": 2 * 1024 * 1024,  # larger deliveries get 413 (Intuit sets no limit; 2 MB is usual)
    "OAUTH_STATE_MAX_AGE": 600,  # seconds a "connect" link stays valid
    "REFRESH_MARGIN": 300,  # refresh the access token this many seconds before it expires
    "HTTP_TIMEOUT": (5.0, 60.0),  # connect, read (QBO itself gives up at 120 s)
    # QBO's published per-realm limits; the client stays under them proactively.
    "RATE_LIMIT_PER_MINUTE": 500,
    "MAX_CONCURRENT_REQUESTS": 10,
    "BATCH_CALLS_PER_MINUTE": 40,
    "BATCH_SIZE": 30,
    "THROTTLE_BACKOFF_SECONDS": 60,  # QBO asks for about a minute after a 429
    "THROTTLE_BACKEND": "auto",  # auto (redis when REDIS_URL is set, else database) | database | redis | memory
    "REDIS_URL": "",
    # Divides every QBO time window (used against the bundled sandbox run with --time-scale).
    "TIME_SCALE": 1.0,
    # Host integration
    "HOST_LABEL": "the app",  # how qbo_sync names the host in admin columns, messages and drift lines
    "ENTITY_ADAPTERS": {},  # {"Customer": "dotted.path.Adapter", "Item": ..., "Invoice": ...}
    "ORGANIZATION_LOOKUP_FIELD": "pk",  # the tenant model's field that names one organization (CLI, API, pages)
    "ORGANIZATION_RESOLVER": None,  # dotted path: f(user) -> queryset/list of organization ids the user may see
    "PERMISSION_CHECKER": None,  # dotted path: f(user, action, organization) -> bool (qbo_sync.permissions)
    "CLIENT_ADDRESS_HEADER": "",  # request.META key a trusted proxy sets (e.g. HTTP_X_REAL_IP); "" = REMOTE_ADDR
    "CRITICAL_FIELDS": {},  # {"Customer": ["email"]}: conflicts on these wait for a person
    "INCOME_ACCOUNT_NAME": "Sales of Product Income",
    # Sales tax (mapping/invoices.py): "detect" (read the company's Preferences.TaxPrefs), "automated" (QBO computes
    # it), "manual" (an invoice names TAX_CODE) or "none"; a connection's own tax_model / tax_code take precedence.
    "TAX_MODEL": "detect",
    "TAX_CODE": "",
    # Queue and workers
    "CHUNK_SIZE": 60,  # items per claim; bulk imports run faster at 300 (docs/performance.md)
    "LEASE_SECONDS": 120,
    "DRAIN_BUDGET_SECONDS": 270,  # 4.5 minutes, always below the django-q2 timeout
    "MAX_ATTEMPTS": 8,
    "RETRY_BASE_SECONDS": 5,
    "RETRY_MAX_SECONDS": 3600,
    "PUSH_DELAY_SECONDS": 2,  # coalesce bursts of saves before pushing
    # Retention (services/retention.py): days kept per kind; None keeps forever. Unset kinds take the defaults
    # there: {"jobs": 30, "sync_log": 90, "webhook_events": 30}.
    "RETENTION_DAYS": {},
    # A drain that finds nothing due waits this long at most for an item due soon (a save's push delay), within
    # its budget; later items are left to the next kick or the minute schedule.
    "DRAIN_WAIT_SECONDS": 10,
    # Nightly pulls, in settings.TIME_ZONE
    "SCHEDULES": {"payments": "02:00", "customers": "03:00", "items": "04:00"},
}

#: Settings holding a dotted path to a callable: ``qbo_settings.NAME`` imports it on first use (a QboConfigurationError
#: naming the setting when it does not import); ``manage.py check`` imports them up front (qbo_sync.E009).
IMPORT_STRINGS = ("ORGANIZATION_RESOLVER", "PERMISSION_CHECKER")
#: Keys QBO_SYNC may also hold: explicit endpoints and schedule times read where they are used.
EXTRA_KEYS = ("API_BASE_URL", "AUTH_BASE_URL", "RECONCILE_AT", "PURGE_AT", "PERMISSION_CHECKER")


class QboSettings:
    """Lazy, namespaced access to qbo_sync's settings (see the module docstring)."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._cache:
            self._cache[name] = self._resolve(name)
        return self._cache[name]

    def _resolve(self, name: str) -> Any:
        value = self.raw(name)
        if name in IMPORT_STRINGS and isinstance(value, str) and value:
            value = self._import(name, value)
        return value

    @staticmethod
    def _import(name: str, path: str) -> Any:
        """A dotted-path setting, imported on first use (DRF-style): one clear error, never a bare ImportError."""
        from qbo_sync.exceptions import QboConfigurationError

        try:
            value = import_string(path)
        except ImportError as exc:
            raise QboConfigurationError(f'QBO_SYNC["{name}"] = {path!r} does not import: {exc}') from None
        if not callable(value):
            raise QboConfigurationError(f'QBO_SYNC["{name}"] = {path!r} is not callable.')
        return value

    def raw(self, name: str) -> Any:
        """The setting as written (a dotted path stays a string): what ``manage.py check`` validates."""
        user = getattr(settings, "QBO_SYNC", {}) or {}
        if name in INTUIT_ENVIRONMENTS["production"]:
            return self._endpoint(name)
        if name in user:
            return user[name]
        top = TOP_LEVEL.get(name)
        if top and getattr(settings, top, None) not in (None, ""):
            return getattr(settings, top)
        if name in INTUIT_ENVIRONMENTS["production"]:
            return self._endpoint(name)
        if name in DEFAULTS:
            return DEFAULTS[name]
        raise AttributeError(f"qbo_sync has no setting {name!r}")

    def _endpoint(self, name: str) -> str:
        """API and OAuth URLs: explicit API_BASE_URL / AUTH_BASE_URL, else derived from the environment."""
        env = self.ENVIRONMENT
        user = getattr(settings, "QBO_SYNC", {}) or {}
        api_base = user.get("API_BASE_URL") or getattr(settings, "QBO_API_BASE_URL", "") or ""
        auth_base = user.get("AUTH_BASE_URL") or getattr(settings, "QBO_AUTH_BASE_URL", "") or ""
        if name == "API_BASE_URL":
            if api_base:
                return api_base.rstrip("/")
            return LOCAL_SANDBOX_URL if env == "local" else INTUIT_ENVIRONMENTS[env]["API_BASE_URL"]
        if not auth_base and env == "local":
            auth_base = api_base or LOCAL_SANDBOX_URL
        if auth_base:
            auth_base = auth_base.rstrip("/")
            return {
                "AUTHORIZE_URL": f"{auth_base}/connect/oauth2",
                "TOKEN_URL": f"{auth_base}/oauth2/v1/tokens/bearer",
                "REVOKE_URL": f"{auth_base}/oauth2/v1/tokens/revoke",
            }[name]
        return INTUIT_ENVIRONMENTS[env][name]

    def reload(self) -> None:
        self._cache.clear()


qbo_settings = QboSettings()


def host_label(capital: bool = False) -> str:
    """The host's display name (``QBO_SYNC["HOST_LABEL"]``), capitalised for the start of a sentence if asked."""
    label = str(qbo_settings.HOST_LABEL or DEFAULTS["HOST_LABEL"])
    return label[:1].upper() + label[1:] if capital else label

_WATCHED = {"QBO_SYNC", "QBO_API_BASE_URL", "QBO_AUTH_BASE_URL", "REDIS_URL", *TOP_LEVEL.values()}


@receiver(setting_changed)
def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in _WATCHED:
        qbo_settings.reload()
        from qbo_sync import adapters, crypto

        adapters.registry.reset()
        crypto.reset()
