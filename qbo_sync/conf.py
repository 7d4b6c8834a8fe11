"""qbo_sync's settings, read lazily through one namespaced object.

Usage::

    from qbo_sync.conf import qbo_settings
    qbo_settings.API_BASE_URL

Values come from three places, first match wins:

1. the ``QBO_SYNC`` dict in Django settings (every option below; docs/installation.md lists them);
2. the older top-level names (``QBO_CLIENT_ID``, ``QBO_ENVIRONMENT``, ... in ``TOP_LEVEL``), still read;
3. the defaults below.

Settings that name code (``IMPORT_STRINGS``, and the values of ``ENTITY_ADAPTERS``) hold a dotted path, or the
object itself; this module imports them, on first use, and nowhere else does. Every value is checked against
``VALIDATORS`` when it is first read (a :class:`~qbo_sync.exceptions.QboConfigurationError` naming the setting and
what is wrong) and by ``manage.py check`` up front (``qbo_sync.checks``: the same messages, with ids).

Nothing is read at import time. Objects built from these settings (the adapter registry, the token cipher, the HTTP
sessions, the throttles) register a reset with :func:`on_reload`; Django's ``setting_changed`` signal (sent by
``override_settings``) and :meth:`QboSettings.reload` run them all, so tests and harnesses that change settings see
the new values at once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
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
    # Nightly pulls, reconciliation and purge, in settings.TIME_ZONE ("" removes the reconciliation or the purge)
    "SCHEDULES": {"payments": "02:00", "customers": "03:00", "items": "04:00"},
    "RECONCILE_AT": "05:00",
    "PURGE_AT": "05:30",
    # What a drain does with a claimed chunk: f(organization_id, items) -> {item.pk: Outcome}. The sync rules;
    # tests and benchmarks name another (a stand-in for QuickBooks) here instead of patching code.
    "PROCESSOR": "qbo_sync.services.sync.process_chunk",
}

#: Settings that name a callable: a dotted path (or the callable itself), imported by ``qbo_settings`` on first use.
IMPORT_STRINGS = ("ORGANIZATION_RESOLVER", "PERMISSION_CHECKER", "PROCESSOR")
#: Of those, the ones that cannot be empty (the others mean "no hook" when empty).
REQUIRED_IMPORTS = ("PROCESSOR",)
#: Settings that map names to dotted paths, each value imported the same way (``ENTITY_ADAPTERS``: adapter classes).
IMPORT_STRING_MAPS = ("ENTITY_ADAPTERS",)
#: Keys QBO_SYNC may also hold: explicit endpoints (else derived from ``ENVIRONMENT``).
EXTRA_KEYS = ("API_BASE_URL", "AUTH_BASE_URL")


def perform_import(setting: str, value: Any) -> Any:
    """One setting that names code, as an object: a dotted path is imported, an object is taken as it is, an empty
    value is ``None``. ``setting`` names it in the error (``QBO_SYNC["X"]`` or ``QBO_SYNC["X"]["key"]``)."""
    from qbo_sync.exceptions import QboConfigurationError

    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise QboConfigurationError(f"{setting} = {value!r} does not import: {exc}") from None
    if not callable(value):
        raise QboConfigurationError(f"{setting} = {value!r} is not callable.")
    return value


# --- validation: one function per kind of value, returning what is wrong (None when nothing is) ------------------

Validator = Callable[[Any], "str | None"]


def _whole(minimum: int) -> Validator:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"must be a whole number of at least {minimum}"
        return None
    return check


def _number(*, positive: bool) -> Validator:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (positive and value == 0):
            return "must be a number above 0" if positive else "must be a number of at least 0"
        return None
    return check


def _choice(*choices: str) -> Validator:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of: {', '.join(choices)}"
    return check


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string"


def _texts(value: Any) -> str | None:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return "must be a list of strings"
    return None


def _timeout(value: Any) -> str | None:
    pair = value if isinstance(value, list | tuple) else None
    numbers = pair if pair is not None else [value]
    if (pair is not None and len(pair) != 2) or any(_number(positive=True)(v) for v in numbers):
        return "must be a number of seconds above 0, or a (connect, read) pair of them"
    return None


_HHMM = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d$")


def _time_of_day(*, optional: bool) -> Validator:
    def check(value: Any) -> str | None:
        if optional and value in ("", None):
            return None
        return None if isinstance(value, str) and _HHMM.match(value) else 'must be a time of day "HH:MM"'
    return check


def _mapping(value_check: Validator, what: str) -> Validator:
    def check(value: Any) -> str | None:
        if not isinstance(value, dict):
            return f"must be a dict ({what})"
        for key, item in value.items():
            problem = value_check(item)
            if problem:
                return f"[{key!r}] {problem}"
        return None
    return check


def _days(value: Any) -> str | None:
    return None if value is None else _whole(0)(value)


def _code(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) or callable(value) else "must be a dotted path"


#: What each setting must hold (import strings are checked by importing them; ENVIRONMENT and TAX_MODEL have checks
#: of their own, qbo_sync.E002 and E017, and CRITICAL_FIELDS is checked against the entities' fields, E010).
VALIDATORS: dict[str, Validator] = {
    "CLIENT_ID": _text, "CLIENT_SECRET": _text, "REDIRECT_URI": _text, "WEBHOOK_VERIFIER_TOKEN": _text,
    "REDIS_URL": _text, "HOST_LABEL": _text, "ORGANIZATION_LOOKUP_FIELD": _text, "CLIENT_ADDRESS_HEADER": _text,
    "INCOME_ACCOUNT_NAME": _text, "TAX_CODE": _text, "API_BASE_URL": _text, "AUTH_BASE_URL": _text,
    "SCOPES": _texts, "TOKEN_KEYS": _texts,
    "MINOR_VERSION": _whole(1), "WEBHOOK_MAX_BYTES": _whole(1), "OAUTH_STATE_MAX_AGE": _whole(1),
    "REFRESH_MARGIN": _number(positive=False), "HTTP_TIMEOUT": _timeout,
    "RATE_LIMIT_PER_MINUTE": _whole(1), "MAX_CONCURRENT_REQUESTS": _whole(1), "BATCH_CALLS_PER_MINUTE": _whole(1),
    "BATCH_SIZE": _whole(1), "THROTTLE_BACKOFF_SECONDS": _number(positive=False),
    "THROTTLE_BACKEND": _choice("auto", "database", "redis", "memory"), "TIME_SCALE": _number(positive=True),
    "ENTITY_ADAPTERS": _mapping(_code, 'entity -> dotted path of its adapter class, e.g. {"Customer": "..."}'),
    "CHUNK_SIZE": _whole(1), "LEASE_SECONDS": _number(positive=True), "DRAIN_BUDGET_SECONDS": _number(positive=True),
    "MAX_ATTEMPTS": _whole(1), "RETRY_BASE_SECONDS": _number(positive=False),
    "RETRY_MAX_SECONDS": _number(positive=False), "PUSH_DELAY_SECONDS": _number(positive=False),
    "DRAIN_WAIT_SECONDS": _number(positive=False),
    "RETENTION_DAYS": _mapping(_days, 'kind -> days kept or None, e.g. {"sync_log": 90}'),
    "SCHEDULES": _mapping(_time_of_day(optional=False), 'entity -> "HH:MM", e.g. {"payments": "02:00"}'),
    "RECONCILE_AT": _time_of_day(optional=True), "PURGE_AT": _time_of_day(optional=True),
}


def problem_with(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the setting ``name``, as a sentence naming it; None when nothing is."""
    if name in IMPORT_STRINGS:
        if not (value is None or isinstance(value, str) or callable(value)):
            return f'QBO_SYNC["{name}"] = {value!r} must be a dotted path to a callable.'
        if name in REQUIRED_IMPORTS and value in (None, ""):
            return f'QBO_SYNC["{name}"] = {value!r} must be a dotted path to a callable (leave it out for the default).'
        return None
    validator = VALIDATORS.get(name)
    problem = validator(value) if validator is not None else None
    if problem is None:
        return None
    if problem.startswith("["):  # a dict's entry
        return f'QBO_SYNC["{name}"]{problem} (it is {value!r}).'
    return f'QBO_SYNC["{name}"] = {value!r} {problem}.'


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
        from qbo_sync.exceptions import QboConfigurationError

        value = self.raw(name)
        problem = problem_with(name, value)
        if problem:
            raise QboConfigurationError(problem)
        if name in IMPORT_STRINGS:
            return perform_import(f'QBO_SYNC["{name}"]', value)
        if name in IMPORT_STRING_MAPS:
            return {key: perform_import(f'QBO_SYNC["{name}"][{key!r}]', path) for key, path in (value or {}).items()}
        if name == "HTTP_TIMEOUT" and isinstance(value, list):
            return tuple(value)  # requests takes a (connect, read) tuple, not a list (a settings file may hold one)
        return value

    def raw(self, name: str) -> Any:
        """The setting as written (a dotted path stays a string): what ``manage.py check`` validates."""
        if name in INTUIT_ENVIRONMENTS["production"]:
            return self._endpoint(name)
        user = getattr(settings, "QBO_SYNC", {}) or {}
        if name in user:
            return user[name]
        top = TOP_LEVEL.get(name)
        if top and getattr(settings, top, None) not in (None, ""):
            return getattr(settings, top)
        if name in DEFAULTS:
            return DEFAULTS[name]
        if name in EXTRA_KEYS:  # optional overrides (AUTH_BASE_URL): unset is "", derived from ENVIRONMENT
            return getattr(settings, f"QBO_{name}", "") or ""
        raise AttributeError(f"qbo_sync has no setting {name!r}")

    def problems(self) -> list[tuple[str, str]]:
        """``(setting, message)`` for every setting that is wrong (read, validated and imported afresh):
        what ``manage.py check`` reports (qbo_sync.E009 for an import, E019 for a value)."""
        from qbo_sync.exceptions import QboConfigurationError

        found: list[tuple[str, str]] = []
        for name in (*DEFAULTS, *EXTRA_KEYS):
            value = self.raw(name)
            problem = problem_with(name, value)
            if problem:
                found.append((name, problem))
                continue
            try:
                if name in IMPORT_STRINGS:
                    perform_import(f'QBO_SYNC["{name}"]', value)
                elif name in IMPORT_STRING_MAPS:
                    for key, path in (value or {}).items():
                        perform_import(f'QBO_SYNC["{name}"][{key!r}]', path)
            except QboConfigurationError as exc:
                found.append((name, str(exc)))
        return found

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
        """Forget every value read, and reset every object built from them (see :func:`on_reload`)."""
        self._cache.clear()
        with _resets_lock:
            resets = list(_resets)
        for reset in resets:
            reset()


qbo_settings = QboSettings()

_resets: list[Callable[[], None]] = []
_resets_lock = threading.Lock()
#: Django settings whose change reloads qbo_settings (and so resets everything registered with on_reload).
_WATCHED = {"QBO_SYNC", "QBO_API_BASE_URL", "QBO_AUTH_BASE_URL", "REDIS_URL", "SECRET_KEY", *TOP_LEVEL.values()}


def on_reload(reset: Callable[[], None]) -> Callable[[], None]:
    """Register ``reset`` (no arguments) to run whenever qbo_sync's settings change: each module that caches
    something built from them registers its own reset here, next to its cache. Usable as a decorator."""
    with _resets_lock:
        if reset not in _resets:
            _resets.append(reset)
    return reset


def host_label(capital: bool = False) -> str:
    """The host's display name (``QBO_SYNC["HOST_LABEL"]``), capitalised for the start of a sentence if asked."""
    label = str(qbo_settings.HOST_LABEL or DEFAULTS["HOST_LABEL"])
    return label[:1].upper() + label[1:] if capital else label


@receiver(setting_changed)
def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in _WATCHED:
        qbo_settings.reload()
