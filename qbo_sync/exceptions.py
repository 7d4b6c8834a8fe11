"""Exceptions raised by qbo_sync.

One root, :class:`QboSyncError`. Errors that describe an answer (or a missing answer) from QuickBooks Online
derive from :class:`QboApiError` and carry what the services layer needs to decide what to do next: the HTTP
status, QBO's fault ``code``, ``message``/``detail``, the offending ``element`` (field), Intuit's
``intuit_tid`` trace id for support tickets, and ``retryable``.

Configuration problems subclass Django's ``ImproperlyConfigured`` and webhook signature failures subclass
``SuspiciousOperation`` (so Django answers 400 without extra code), as anymail does.

This module imports nothing from the ORM: the HTTP client uses it and must stay usable outside Django models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation

__all__ = [
    "QboApiError",
    "QboAuthError",
    "QboConfigurationError",
    "QboDuplicateName",
    "QboForeignRowError",
    "QboNotFound",
    "QboProtocolError",
    "QboRateLimited",
    "QboReauthRequired",
    "QboServerError",
    "QboStaleObject",
    "QboStaleSyncToken",
    "QboSyncError",
    "QboTransportError",
    "QboValidationError",
    "QboWebhookSignatureError",
]


class QboSyncError(Exception):
    """Root of every qbo_sync error."""


class QboApiError(QboSyncError):
    """QuickBooks Online refused, failed or garbled a call.

    ``retryable`` says whether sending the *same* request again (for writes: with the same ``requestid``) may
    succeed. Subclasses set a class default; a parsed fault may override it per instance.
    """

    default_retryable: bool = False
    default_message: str = "QuickBooks Online API error"

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        element: str | None = None,
        intuit_tid: str | None = None,
        fault_type: str | None = None,
        retryable: bool | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.message = message or self.default_message
        self.status = status
        self.code = code
        self.detail = detail
        self.element = element or None
        self.intuit_tid = intuit_tid
        self.fault_type = fault_type
        self.retryable = self.default_retryable if retryable is None else retryable
        # Every error of a multi-error fault, normalised to {"code", "message", "detail", "element"}.
        self.errors: list[dict[str, Any]] = [dict(e) for e in errors]
        super().__init__(self.message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.detail and self.detail != self.message:
            parts.append(self.detail)
        meta = []
        if self.status is not None:
            meta.append(f"status={self.status}")
        if self.code:
            meta.append(f"code={self.code}")
        if self.element:
            meta.append(f"element={self.element}")
        if self.intuit_tid:
            meta.append(f"intuit_tid={self.intuit_tid}")
        text = ": ".join(parts)
        return f"{text} ({', '.join(meta)})" if meta else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, code={self.code!r}, "
            f"element={self.element!r}, intuit_tid={self.intuit_tid!r}, retryable={self.retryable!r})"
        )


class QboAuthError(QboApiError):
    """Authentication failed (HTTP 401, fault 3200) or authorization was refused (fault 120).

    The HTTP client refreshes the access token once on a 401 before raising this.
    """

    default_message = "QuickBooks Online authentication failed"


class QboReauthRequired(QboAuthError):
    """The refresh token is no longer accepted (OAuth ``invalid_grant``): a person must reconnect the company.

    Retrying cannot help; the services layer marks the connection needs-reauth and pauses its queue.
    """

    default_message = "The QuickBooks Online connection must be re-authorised (invalid_grant)"


class QboRateLimited(QboApiError):
    """Throttled (HTTP 429, fault 3001), or the local limiter could not grant a slot in time.

    ``wait_seconds`` is how long to wait before trying again: the server's Retry-After if it sent one (QBO
    does not; it asks for about 60 s in its docs), or, once the client has given up, the last delay it used.
    """

    default_retryable = True
    default_message = "QuickBooks Online request limit reached"

    def __init__(self, message: str | None = None, *, wait_seconds: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.wait_seconds = wait_seconds


class QboValidationError(QboApiError):
    """QBO rejected the request's content (most 400 faults). ``element``/``field`` names the field when QBO does."""

    default_message = "QuickBooks Online rejected the request"

    @property
    def field(self) -> str | None:
        return self.element


class QboStaleObject(QboValidationError):
    """Fault 5010: the SyncToken sent is not the current one (someone else changed the object). Re-read,
    re-apply.
    """

    default_message = "Stale Object Error"


# The name the style brief uses.
QboStaleSyncToken = QboStaleObject


class QboDuplicateName(QboValidationError):
    """Fault 6240: the DisplayName/Name is already used (also by vendors, employees and inactive records)."""

    default_message = "Duplicate Name Exists Error"


class QboNotFound(QboValidationError):
    """Fault 610 (object missing *or inactive*), HTTP 404, or an id that does not exist."""

    default_message = "Object Not Found"


class QboServerError(QboApiError):
    """QBO failed on its side (HTTP 5xx). Intuit advises resubmitting."""

    default_retryable = True
    default_message = "QuickBooks Online server error"


class QboTransportError(QboApiError):
    """No (complete) answer: timeout, refused or reset connection, response cut short.

    A write may have been committed before its response was lost; this looks exactly the same from here. Retry
    with the *same* ``requestid`` so QBO answers with the original result instead of creating a second record.
    """

    default_retryable = True
    default_message = "No complete response from QuickBooks Online"


class QboProtocolError(QboApiError):
    """The answer could not be understood (HTML page, truncated or non-JSON body, unexpected shape).

    Retryable when the status was 2xx or 5xx (a proxy or a cut connection garbled an answer that may be fine
    on a second try: writes are protected by their requestid), not when it was a 4xx.
    """

    default_message = "Unreadable response from QuickBooks Online"


class QboConfigurationError(QboSyncError, ImproperlyConfigured):
    """qbo_sync is configured wrongly (missing client id, unknown environment, bad URL...)."""


class QboForeignRowError(QboSyncError, ValueError):
    """A host row was handed to the sync of an organization it does not belong to. Nothing was queued or sent."""


class QboWebhookSignatureError(QboSyncError, SuspiciousOperation):
    """A webhook delivery's ``intuit-signature`` is missing or does not match the body."""
