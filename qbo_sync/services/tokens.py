"""The stored tokens of a connection, refreshed single-flight across threads, processes and machines.

:class:`DatabaseTokenProvider` implements the client's ``TokenProvider`` over a :class:`QboConnection` row. The
rules it keeps (each one is a way integrations in the wild lose their connection):

* Refresh shortly before expiry (``REFRESH_MARGIN``) and when QBO answers 401, never "just in case".
* Only one refresh per realm at a time, anywhere: the refresh runs inside ``transaction.atomic()`` holding
  ``SELECT ... FOR UPDATE`` on the connection row (on SQLite the project's ``BEGIN IMMEDIATE`` already serialises
  writers). A per-process lock in front keeps the threads of one process from queueing on the database.
* After taking the lock, re-read: if the access token is no longer the one that failed, or ``token_version``
  moved, someone else refreshed while we waited, so use their token and do not call Intuit. Presenting a refresh
  token that was just rotated away is exactly how the losers of such a race earn ``invalid_grant``.
* The new refresh token is saved in the same transaction as the refresh result, before any use of it.
* ``invalid_grant`` means a person must reconnect: the connection is marked needs-reauth with a message saying
  how, ``connection_needs_reauth`` is sent, and :class:`QboReauthRequired` is raised. Queued items are left alone
  (the queue waits while a connection needs re-authorisation).

Keep QBO calls outside the caller's own transactions: a refresh done inside one is only durable when the caller
commits. (Intuit keeps the previous refresh token usable until its successor is first used, which is what makes a
rolled-back refresh recoverable rather than fatal.)
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from qbo_sync.client.oauth import QboOAuthClient, TokenSet
from qbo_sync.conf import qbo_settings
from qbo_sync.exceptions import QboReauthRequired, QboSyncError
from qbo_sync.services.sessions import oauth_session
from qbo_sync.signals import connection_needs_reauth

__all__ = [
    "DatabaseTokenProvider",
    "QboNotConnected",
    "ensure_usable",
    "oauth_client",
    "reauth_message",
    "store_tokens",
]

logger = logging.getLogger(__name__)


class QboNotConnected(QboSyncError):
    """The organization has no usable QuickBooks connection (never connected, or disconnected)."""


# One lock per connection per process: threads of a process wait here, not on the database lock.
_process_locks: dict[int, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(connection_id: int) -> threading.Lock:
    with _process_locks_guard:
        lock = _process_locks.get(connection_id)
        if lock is None:
            lock = _process_locks[connection_id] = threading.Lock()
        return lock


def oauth_client() -> QboOAuthClient:
    """An OAuth client for the configured app and environment (Intuit's URLs, or the sandbox's for ``local``)."""
    return QboOAuthClient(
        qbo_settings.CLIENT_ID,
        qbo_settings.CLIENT_SECRET,
        redirect_uri=qbo_settings.REDIRECT_URI or None,
        authorize_url=qbo_settings.AUTHORIZE_URL,
        token_url=qbo_settings.TOKEN_URL,
        revoke_url=qbo_settings.REVOKE_URL,
        timeout=qbo_settings.HTTP_TIMEOUT,
        session=oauth_session(),
    )


def _scaled(seconds: float) -> timedelta:
    """A QBO duration in wall-clock time (``TIME_SCALE`` shrinks QBO's clock for the sandbox)."""
    return timedelta(seconds=seconds / float(qbo_settings.TIME_SCALE))


def store_tokens(connection: Any, tokens: TokenSet, *, now: datetime | None = None) -> list[str]:
    """Put ``tokens`` on ``connection`` (encrypted) and bump ``token_version``; returns the fields to save.

    Lifetimes are taken from Intuit's answer and shrunk by ``TIME_SCALE``, like every other QBO duration.
    """
    now = now or timezone.now()
    connection.access_token = tokens.access_token
    connection.refresh_token = tokens.refresh_token
    connection.access_token_expires_at = now + _scaled((tokens.expires_at - now).total_seconds())
    refresh_expiry = tokens.refresh_expires_at
    if tokens.refresh_hard_expires_at is not None:
        refresh_expiry = min(filter(None, [refresh_expiry, tokens.refresh_hard_expires_at]))
    connection.refresh_token_expires_at = (
        now + _scaled((refresh_expiry - now).total_seconds()) if refresh_expiry is not None else None
    )
    connection.token_version += 1
    connection.last_refreshed_at = now
    return [
        "access_token_encrypted",
        "refresh_token_encrypted",
        "access_token_expires_at",
        "refresh_token_expires_at",
        "token_version",
        "last_refreshed_at",
        "updated_at",
    ]


def organization_label(connection: Any) -> tuple[str, str]:
    """(name, reference) of a connection's organization, for messages (the reference ``--org`` takes)."""
    from qbo_sync.organizations import organization_ref

    org = connection.organization
    return str(org), organization_ref(org)


def reauth_message(connection: Any) -> str:
    """What the person who can fix a needs-reauth connection should do, in one sentence."""
    name, slug = organization_label(connection)
    return (
        f"QuickBooks no longer accepts the stored authorisation for {name} (it was revoked, or unused for too "
        f"long), so syncing is paused and queued changes are kept. Reconnect QuickBooks for {name} in the admin "
        f"or with `manage.py qbo_sync connect --org {slug}`."
    )


def ensure_usable(connection: Any) -> None:
    """Raise QboReauthRequired / QboNotConnected unless ``connection`` can talk to QBO."""
    from qbo_sync.models import QboConnection

    if connection.status == QboConnection.Status.NEEDS_REAUTH:
        raise QboReauthRequired(connection.last_error or reauth_message(connection))
    if connection.status != QboConnection.Status.CONNECTED or not connection.refresh_token_encrypted:
        name, slug = organization_label(connection)
        raise QboNotConnected(
            f"{name} is not connected to QuickBooks. Connect it in the admin or with "
            f"`manage.py qbo_sync connect --org {slug}`."
        )


class DatabaseTokenProvider:
    """``TokenProvider`` for one :class:`~qbo_sync.models.QboConnection` (see the module docstring).

    Thread-safe; cheap to create. It remembers the last token it read, so the hot path does not query the
    database for every request; another process's refresh does not invalidate that token (Intuit's old access
    tokens stay valid until they expire), and a revoked one comes back as a 401, which leads here to re-read.
    """

    def __init__(self, connection_id: int, *, oauth: QboOAuthClient | None = None) -> None:
        self.connection_id = int(connection_id)
        self._oauth = oauth
        self._lock = threading.Lock()
        self._cached: tuple[str, datetime | None, int] | None = None  # (access token, expires at, version)
        self.refreshes = 0  # refreshes this provider sent to Intuit (diagnostics and tests)

    def __repr__(self) -> str:
        return f"DatabaseTokenProvider(connection_id={self.connection_id})"

    @staticmethod
    def _margin() -> timedelta:
        return _scaled(float(qbo_settings.REFRESH_MARGIN))

    @staticmethod
    def _expiring(expires_at: datetime | None, margin: timedelta) -> bool:
        return expires_at is None or expires_at <= timezone.now() + margin

    def _load(self) -> tuple[str, datetime | None, int]:
        from qbo_sync.models import QboConnection

        try:
            connection = QboConnection.objects.select_related("organization").get(pk=self.connection_id)
        except QboConnection.DoesNotExist:
            raise QboNotConnected(f"QuickBooks connection {self.connection_id} no longer exists.") from None
        ensure_usable(connection)
        current = (connection.access_token, connection.access_token_expires_at, connection.token_version)
        with self._lock:
            self._cached = current
        return current

    def access_token(self) -> str:
        with self._lock:
            cached = self._cached
        margin = self._margin()
        if cached is None or self._expiring(cached[1], margin):
            cached = self._load()
        token, expires_at, version = cached
        if self._expiring(expires_at, margin):
            return self._refresh(stale_access_token=token, seen_version=version)
        return token

    def refresh(self, stale_access_token: str) -> str:
        """QBO refused ``stale_access_token`` (401): return a newer one, refreshing only if nobody else has."""
        return self._refresh(stale_access_token=stale_access_token, seen_version=None)

    def _refresh(self, *, stale_access_token: str, seen_version: int | None) -> str:
        from qbo_sync.models import QboConnection

        reauth: QboReauthRequired | None = None
        with _process_lock(self.connection_id), transaction.atomic():
            try:
                connection = (
                    QboConnection.objects.select_for_update(of=("self",))
                    .select_related("organization")
                    .get(pk=self.connection_id)
                )
            except QboConnection.DoesNotExist:
                raise QboNotConnected(f"QuickBooks connection {self.connection_id} no longer exists.") from None
            ensure_usable(connection)
            current = connection.access_token
            moved = current != stale_access_token or (
                seen_version is not None and connection.token_version != seen_version
            )
            if moved and not self._expiring(connection.access_token_expires_at, timedelta(0)):
                # Someone refreshed while we waited for the lock: theirs is the token to use.
                logger.debug("QBO realm %s: token already refreshed by another worker (version %s)",
                             connection.realm_id, connection.token_version)
                self._remember(connection)
                return current
            try:
                tokens = (self._oauth or oauth_client()).refresh(connection.refresh_token)
            except QboReauthRequired as exc:
                connection.status = QboConnection.Status.NEEDS_REAUTH
                connection.last_error = reauth_message(connection)
                connection.save(update_fields=["status", "last_error", "updated_at"])
                reauth = exc
            else:
                # Persisted in this transaction, before anyone uses the new refresh token.
                fields = store_tokens(connection, tokens)
                connection.last_error = ""
                connection.save(update_fields=[*fields, "last_error"])
                self.refreshes += 1
                logger.info("QBO realm %s: access token refreshed (version %s)", connection.realm_id,
                            connection.token_version)
                self._remember(connection)
                return tokens.access_token
        # Reached only after invalid_grant, with the needs-reauth mark committed (or part of the caller's
        # transaction, if there is one).
        assert reauth is not None
        logger.warning("QBO realm %s: refresh token refused (invalid_grant, intuit_tid=%s); connection %s needs "
                       "re-authorisation", connection.realm_id, reauth.intuit_tid, connection.pk)
        transaction.on_commit(lambda: connection_needs_reauth.send(sender=QboConnection, connection=connection))
        raise QboReauthRequired(
            connection.last_error, status=reauth.status, code=reauth.code, intuit_tid=reauth.intuit_tid
        ) from None

    def _remember(self, connection: Any) -> None:
        with self._lock:
            self._cached = (connection.access_token, connection.access_token_expires_at, connection.token_version)
