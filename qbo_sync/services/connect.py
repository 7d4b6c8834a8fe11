"""Connecting an organization to a QuickBooks company, staying connected, and disconnecting.

* :func:`start_connect` returns the URL of Intuit's consent page (or the bundled sandbox's, with environment
  ``local``). Its ``state`` is signed (``django.core.signing``, salted), expires after ``OAUTH_STATE_MAX_AGE`` and
  names an :class:`~qbo_sync.models.OAuthState` row, which makes it single-use and binds it to the organization and
  the user who started.
* :func:`complete_connect` checks the callback's ``state``, exchanges the code exactly once, proves the realm by
  reading its CompanyInfo with the new tokens (the callback's ``realmId`` is only a URL parameter), and only then
  stores the realm, the encrypted tokens and the company's name.
* :func:`disconnect` revokes the tokens and marks the connection disconnected; queued work is kept.
* :func:`client_for` is the one factory every service uses to talk to QBO: the connection's stored tokens
  (:class:`~qbo_sync.services.tokens.DatabaseTokenProvider`), the shared throttle, and the realm's session from
  the process's pool (``services/sessions.py``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from qbo_sync.client.http import QboClient
from qbo_sync.client.tokens import InMemoryTokenProvider
from qbo_sync.conf import ENVIRONMENTS, qbo_settings
from qbo_sync.exceptions import QboApiError, QboConfigurationError, QboReauthRequired, QboSyncError
from qbo_sync.services.ratelimit import throttle_for_settings
from qbo_sync.services.sessions import api_session, close_sessions
from qbo_sync.services.tokens import (
    DatabaseTokenProvider,
    QboNotConnected,
    ensure_usable,
    oauth_client,
    organization_label,
    store_tokens,
)

__all__ = [
    "QboConnectError",
    "QboNotConnected",
    "QboOAuthStateError",
    "QboReauthRequired",
    "client_for",
    "close_sessions",
    "complete_connect",
    "disconnect",
    "start_connect",
]

if TYPE_CHECKING:
    from qbo_sync.models import QboConnection

logger = logging.getLogger(__name__)

STATE_SALT = "qbo_sync.oauth.state"


class QboConnectError(QboSyncError):
    """Connecting failed for a reason the person connecting should read (the message says what to do)."""


class QboOAuthStateError(QboConnectError):
    """The callback's ``state`` is missing, forged, expired, already used, or belongs to another user."""


# --- connecting ----------------------------------------------------------------------------------------------


def _organization_model() -> Any:
    from qbo_sync.models.base import ORGANIZATION_MODEL

    return apps.get_model(ORGANIZATION_MODEL)


def _organization(organization: Any) -> Any:
    model = _organization_model()
    if isinstance(organization, model):
        return organization
    try:
        return model._default_manager.get(pk=organization)
    except (model.DoesNotExist, ValueError, TypeError):
        raise QboConnectError(f"No organization {organization!r}.") from None


def _check_environment() -> str:
    env = qbo_settings.ENVIRONMENT
    if env not in ENVIRONMENTS:
        raise QboConfigurationError(f'QBO_SYNC["ENVIRONMENT"] is {env!r}; use one of {", ".join(ENVIRONMENTS)}.')
    if not qbo_settings.CLIENT_ID or not qbo_settings.CLIENT_SECRET:
        raise QboConfigurationError(
            'Set QBO_SYNC["CLIENT_ID"] and QBO_SYNC["CLIENT_SECRET"] (your Intuit app\'s keys) to connect.')
    if not qbo_settings.REDIRECT_URI:
        raise QboConfigurationError('Set QBO_SYNC["REDIRECT_URI"] to the URL of qbo_sync\'s oauth/callback/ view.')
    return env


def start_connect(organization: Any, user: Any = None) -> str:
    """The authorization URL that starts connecting ``organization`` (an instance or its pk) for ``user``.

    ``user`` may be None for connections started from the command line; the callback must then be completed
    without a user too.
    """
    _check_environment()
    org = _organization(organization)
    nonce = secrets.token_urlsafe(24)
    from qbo_sync.models import OAuthState

    now = timezone.now()
    OAuthState.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()  # old attempts, in passing
    OAuthState.objects.create(
        nonce=nonce,
        organization=org,
        user=user if user is not None and getattr(user, "pk", None) else None,
        expires_at=now + timedelta(seconds=float(qbo_settings.OAUTH_STATE_MAX_AGE)),
    )
    state = signing.dumps({"n": nonce, "o": str(org.pk)}, salt=STATE_SALT, compress=True)
    url = oauth_client().authorization_url(state, scopes=qbo_settings.SCOPES)
    logger.info("QBO connect started for organization %s", org.pk)
    return url


def _claim_state(state: str, user: Any) -> Any:
    """Check and consume the ``state`` of a callback; returns the organization it was issued for."""
    from qbo_sync.models import OAuthState

    restart = "Start connecting again from the admin or with `manage.py qbo_sync connect`."
    if not state:
        raise QboOAuthStateError(f"The QuickBooks callback carries no state, so it cannot be trusted. {restart}")
    max_age = float(qbo_settings.OAUTH_STATE_MAX_AGE)
    try:
        payload = signing.loads(state, salt=STATE_SALT, max_age=timedelta(seconds=max_age))
    except signing.SignatureExpired:
        raise QboOAuthStateError(
            f"This QuickBooks connect link has expired (links are valid for {int(max_age)} seconds). {restart}"
        ) from None
    except signing.BadSignature:
        raise QboOAuthStateError(
            f"The QuickBooks callback's state is not one this site issued (forged or damaged), so it was refused. "
            f"{restart}"
        ) from None
    nonce = payload.get("n") if isinstance(payload, dict) else None
    with transaction.atomic():
        row = (
            OAuthState.objects.select_for_update(of=("self",))
            .select_related("organization")
            .filter(nonce=str(nonce))
            .first()
        )
        if row is None or str(row.organization_id) != str(payload.get("o")):
            raise QboOAuthStateError(f"The QuickBooks callback's state is unknown here, so it was refused. {restart}")
        if row.used_at is not None:
            raise QboOAuthStateError(
                f"This QuickBooks connect link was already used (each link works once). {restart}"
            )
        if row.expires_at <= timezone.now():
            raise QboOAuthStateError(
                f"This QuickBooks connect link has expired (links are valid for {int(max_age)} seconds). {restart}"
            )
        user_id = getattr(user, "pk", None) if user is not None else None
        if row.user_id != user_id:
            raise QboOAuthStateError(
                f"This QuickBooks connect link was started by another user; the person who started it must "
                f"finish it. {restart}"
            )
        # Consumed before the code is exchanged: a replayed callback can never exchange a second code.
        row.used_at = timezone.now()
        row.save(update_fields=["used_at"])
    return row.organization


def complete_connect(request_params: Mapping[str, Any], user: Any = None, *,
                     authorize: Callable[[Any], None] | None = None) -> QboConnection:
    """Finish the flow from the callback's query parameters (``code``, ``state``, ``realmId`` or ``error``).

    Returns the connected :class:`~qbo_sync.models.QboConnection`, its ``company_name`` read from QBO. Raises
    :class:`QboOAuthStateError` for a bad state and :class:`QboConnectError` for anything else the person
    connecting must know about. ``authorize(organization)``, when given, runs once the state names the organization
    and before the code is exchanged (it raises to refuse: a permission revoked since the connect started).
    """
    from qbo_sync.models import QboConnection

    env = _check_environment()
    params = {k: (v[0] if isinstance(v, list | tuple) and v else v) for k, v in request_params.items()}
    organization = _claim_state(str(params.get("state") or ""), user)
    if authorize is not None:
        authorize(organization)
    if params.get("error"):
        raise QboConnectError(
            f"QuickBooks did not authorise the connection ({params['error']}). Nothing was changed; start again "
            f"if that was not intended."
        )
    code, realm_id = str(params.get("code") or ""), str(params.get("realmId") or "")
    if not code or not realm_id:
        raise QboConnectError("The QuickBooks callback lacks the authorization code or the company (realmId).")

    oauth = oauth_client()
    try:
        tokens = oauth.exchange_code(code)  # exactly once: the state was consumed above
    except QboApiError as exc:
        raise QboConnectError(f"QuickBooks refused the authorization code ({exc.code or exc.status}). Start "
                              f"connecting again.") from exc

    # The callback's realmId is only a URL parameter: anyone can change it. Nothing is saved until the new tokens
    # have read that very company.
    company_name = _verified_company_name(realm_id, tokens)

    other = (
        QboConnection.objects.filter(
            environment=env, realm_id=realm_id,
            status__in=[QboConnection.Status.CONNECTED, QboConnection.Status.NEEDS_REAUTH],
        )
        .exclude(organization=organization)
        .exists()
    )
    if other:
        _revoke_quietly(tokens.refresh_token, realm_id)
        raise QboConnectError(ALREADY_CONNECTED.format(realm_id=realm_id))

    try:
        with transaction.atomic():
            connection, _ = QboConnection.objects.select_for_update().get_or_create(organization=organization)
            if connection.realm_id and connection.realm_id != realm_id:
                logger.warning("QBO organization %s: reconnected from realm %s to realm %s", organization.pk,
                               connection.realm_id, realm_id)
                # Another company: its records are all new to us. The next pulls read everything and link by
                # natural key (the old company's links stay for the record, unused: they are bound to its realm).
                from qbo_sync.models import PullCursor

                PullCursor.objects.filter(organization=organization).update(changed_since=None)
            connection.realm_id = realm_id
            connection.environment = env
            store_tokens(connection, tokens)
            connection.status = QboConnection.Status.CONNECTED
            connection.last_error = ""
            connection.connected_at = timezone.now()
            connection.connected_by = user if getattr(user, "pk", None) else None
            if company_name:
                connection.company_name = company_name
            connection.save()
    except IntegrityError:  # another organization connected the same company a moment ago
        _revoke_quietly(tokens.refresh_token, realm_id)
        raise QboConnectError(ALREADY_CONNECTED.format(realm_id=realm_id)) from None
    logger.info("QBO organization %s connected to realm %s", organization.pk, realm_id)
    return connection


#: Never names the other organization: the person connecting may not even know it exists.
ALREADY_CONNECTED = ("QuickBooks company {realm_id} is already connected to another organization; disconnect it "
                     "there first.")


def _verified_company_name(realm_id: str, tokens: Any) -> str:
    """Read the company's CompanyInfo with the tokens just issued; refuse (and revoke them) unless QuickBooks
    answers for ``realm_id``. Returns the company's name."""
    scale = float(qbo_settings.TIME_SCALE)
    timeout = qbo_settings.HTTP_TIMEOUT
    try:
        client = QboClient(
            realm_id,
            api_base_url=qbo_settings.API_BASE_URL,
            tokens=InMemoryTokenProvider(tokens),
            throttle=throttle_for_settings(),
            minor_version=int(qbo_settings.MINOR_VERSION),
            timeout=tuple(timeout) if isinstance(timeout, list) else timeout,
            max_retries=2,
            throttle_backoff=float(qbo_settings.THROTTLE_BACKOFF_SECONDS) / scale,
            backoff_base=0.5 / scale,
            backoff_cap=30.0 / scale,
            session=api_session(realm_id),
        )
        info = client.company_info()
    except (QboSyncError, ValueError) as exc:
        logger.warning("QBO connect refused: the new tokens could not read CompanyInfo of realm %s (%s)", realm_id,
                       type(exc).__name__)
        _revoke_quietly(tokens.refresh_token, realm_id)
        raise QboConnectError(
            f"QuickBooks did not confirm that this authorization is for company {realm_id}, so nothing was "
            f"connected. Start connecting again and approve the company you want to connect."
        ) from None
    return str(info.get("CompanyName") or info.get("LegalName") or "")[:255]


def disconnect(organization: Any) -> QboConnection | None:
    """Revoke the organization's tokens at Intuit and mark its connection disconnected.

    Queued items are kept (they wait until the organization connects again). Returns the connection, or None if
    there was none. A revoke that fails (already revoked, Intuit unreachable) is logged, and the tokens are
    forgotten anyway.
    """
    from qbo_sync.models import QboConnection

    org = _organization(organization)
    with transaction.atomic():
        connection = QboConnection.objects.select_for_update().filter(organization=org).first()
        if connection is None:
            return None
        refresh_token = connection.refresh_token if connection.refresh_token_encrypted else ""
        access_token = connection.access_token if connection.access_token_encrypted else ""
        connection.access_token_encrypted = ""
        connection.refresh_token_encrypted = ""
        connection.access_token_expires_at = None
        connection.refresh_token_expires_at = None
        connection.token_version += 1
        connection.status = QboConnection.Status.DISCONNECTED
        connection.last_error = ""
        connection.save()
    _revoke_quietly(refresh_token or access_token, connection.realm_id)
    logger.info("QBO organization %s disconnected from realm %s", org.pk, connection.realm_id)
    return connection


def _revoke_quietly(token: str, realm_id: str) -> None:
    if not token:
        return
    try:
        oauth_client().revoke(token)
    except QboSyncError as exc:
        logger.warning("QBO realm %s: revoking the tokens failed (%s); they were forgotten here anyway",
                       realm_id, type(exc).__name__)


# --- talking to QBO --------------------------------------------------------------------------------------------

def client_for(organization_or_connection: Any) -> QboClient:
    """A :class:`~qbo_sync.client.QboClient` for an organization's realm.

    Takes a :class:`~qbo_sync.models.QboConnection`, an organization, or an organization's pk. Raises
    :class:`QboReauthRequired` when the connection needs a person to reconnect it and :class:`QboNotConnected`
    when there is no usable connection. The client shares this process's session for the realm and the
    configured throttle; it is cheap to create, thread-safe, and meant to be reused for a unit of work.
    """
    from qbo_sync.models import QboConnection

    target = organization_or_connection
    if isinstance(target, QboConnection):
        connection = target
    else:
        org_id = getattr(target, "pk", target)
        found = QboConnection.objects.select_related("organization").filter(organization_id=org_id).first()
        if found is None:
            raise QboNotConnected(
                f"Organization {org_id} is not connected to QuickBooks. Connect it in the admin or with "
                f"`manage.py qbo_sync connect --org <organization>`."
            )
        connection = found
    ensure_usable(connection)
    scale = float(qbo_settings.TIME_SCALE)
    timeout = qbo_settings.HTTP_TIMEOUT
    return QboClient(
        connection.realm_id,
        api_base_url=qbo_settings.API_BASE_URL,
        tokens=DatabaseTokenProvider(connection.pk),
        throttle=throttle_for_settings(),
        minor_version=int(qbo_settings.MINOR_VERSION),
        timeout=tuple(timeout) if isinstance(timeout, list) else timeout,
        throttle_backoff=float(qbo_settings.THROTTLE_BACKOFF_SECONDS) / scale,
        backoff_base=0.5 / scale,
        backoff_cap=30.0 / scale,
        pool_size=int(qbo_settings.MAX_CONCURRENT_REQUESTS),
        session=api_session(connection.realm_id),
    )


def connection_summary(connection: Any) -> str:
    """One line for people: which organization is linked to which company, and in what state."""
    name, _slug = organization_label(connection)
    company = connection.company_name or f"realm {connection.realm_id}"
    return f"{name} ↔ {company} ({connection.get_status_display()})"
