"""Intuit OAuth 2.0 calls: authorization URL, code exchange, refresh, revoke.

Why plain ``requests`` and not ``requests-oauthlib``: the whole flow we need is one URL to build and three
form POSTs with HTTP Basic client authentication (exchange, refresh, revoke). requests-oauthlib would add two
dependencies (it and oauthlib) to save about thirty lines, and its token-updater callback hides exactly the
part we must control ourselves: the refresh has to run single-flight under a per-realm lock owned by the
services layer, and the newest refresh token has to be persisted before it is used. It would also not know
Intuit's extras (``x_refresh_token_expires_in``, the hard-expiry header) nor turn ``invalid_grant`` into
:class:`~qbo_sync.exceptions.QboReauthRequired`. So this module is small and explicit instead.

Nothing here retries: a refresh is not idempotent (Intuit may rotate the refresh token), so whether to try
again is the token provider's decision. Nothing here logs a token, a code, a secret or an Authorization
header.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from qbo_sync.client.errors import redact
from qbo_sync.client.sessions import new_session
from qbo_sync.exceptions import (
    QboAuthError,
    QboConfigurationError,
    QboProtocolError,
    QboReauthRequired,
    QboServerError,
    QboTransportError,
)

__all__ = [
    "ACCOUNTING_SCOPE",
    "INTUIT_AUTHORIZE_URL",
    "INTUIT_REVOKE_URL",
    "INTUIT_TOKEN_URL",
    "QboOAuthClient",
    "TokenSet",
]

logger = logging.getLogger(__name__)

INTUIT_AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
INTUIT_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
INTUIT_REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TokenSet:
    """Tokens from one exchange or refresh. Times are aware UTC datetimes. ``repr`` never shows a token."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    refresh_expires_at: datetime | None = None
    #: Intuit's 5-year hard limit on the refresh token, when the server reports it.
    refresh_hard_expires_at: datetime | None = None
    token_type: str = "bearer"
    id_token: str | None = field(default=None, repr=False)

    def access_expires_within(self, seconds: float, *, now: datetime | None = None) -> bool:
        return self.expires_at - (now or _utcnow()) <= timedelta(seconds=seconds)

    @classmethod
    def from_response(cls, data: Mapping[str, Any], *, now: datetime | None = None) -> TokenSet:
        """Build from Intuit's token JSON (``expires_in`` and ``x_refresh_token_expires_in`` are seconds)."""
        now = now or _utcnow()
        try:
            access, refresh = data["access_token"], data["refresh_token"]
            expires_in = float(data.get("expires_in", 3600))
        except (KeyError, TypeError, ValueError) as exc:
            raise QboProtocolError("Token response lacks access_token/refresh_token/expires_in") from exc
        if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
            raise QboProtocolError("Token response has empty or non-string tokens")

        def after(key: str) -> datetime | None:
            value = data.get(key)
            try:
                return now + timedelta(seconds=float(value)) if value is not None else None
            except (TypeError, ValueError):
                return None

        return cls(
            access_token=access,
            refresh_token=refresh,
            expires_at=now + timedelta(seconds=expires_in),
            refresh_expires_at=after("x_refresh_token_expires_in"),
            refresh_hard_expires_at=after("x_refresh_token_hard_expires_in"),
            token_type=str(data.get("token_type", "bearer")),
            id_token=data.get("id_token") if isinstance(data.get("id_token"), str) else None,
        )


class QboOAuthClient:
    """The app's side of Intuit OAuth 2.0 for one set of client credentials.

    The URLs default to Intuit's (the same for its sandbox and production companies); point them at the
    bundled sandbox with :meth:`for_base_url`.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        redirect_uri: str | None = None,
        authorize_url: str = INTUIT_AUTHORIZE_URL,
        token_url: str = INTUIT_TOKEN_URL,
        revoke_url: str = INTUIT_REVOKE_URL,
        timeout: float | tuple[float, float] = (5, 30),
        session: requests.Session | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not client_id or not client_secret:
            raise QboConfigurationError("QuickBooks OAuth needs a client id and a client secret")
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.revoke_url = revoke_url
        self.timeout = timeout
        #: As for QboClient: a session built here is owned (closed by :meth:`close`); a given one is its pool's.
        self.owns_session = session is None
        self._session = session if session is not None else new_session(pool_size=2)
        self._clock = clock

    def close(self) -> None:
        """Close the session this client built; a shared one is left to its pool."""
        if self.owns_session:
            self._session.close()

    def __enter__(self) -> QboOAuthClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"QboOAuthClient(client_id={self.client_id!r}, token_url={self.token_url!r})"

    @classmethod
    def for_base_url(cls, base_url: str, client_id: str, client_secret: str, **kwargs: Any) -> QboOAuthClient:
        """Client for a server that serves Intuit's paths under one origin (the bundled sandbox)."""
        base = base_url.rstrip("/")
        kwargs.setdefault("authorize_url", f"{base}/connect/oauth2")
        return cls(
            client_id,
            client_secret,
            token_url=f"{base}/oauth2/v1/tokens/bearer",
            revoke_url=f"{base}/oauth2/v1/tokens/revoke",
            **kwargs,
        )

    def authorization_url(
        self, state: str, scopes: Iterable[str] = (ACCOUNTING_SCOPE,), *, redirect_uri: str | None = None
    ) -> str:
        """Where to send the user to approve the connection; ``state`` comes back on the redirect."""
        redirect = redirect_uri or self.redirect_uri
        if not redirect:
            raise QboConfigurationError("QuickBooks OAuth needs a redirect_uri")
        if not state:
            raise ValueError("state is required (it protects the callback against CSRF)")
        params = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": " ".join(scopes),
            "redirect_uri": redirect,
            "state": state,
        }
        sep = "&" if "?" in self.authorize_url else "?"
        return f"{self.authorize_url}{sep}{urlencode(params)}"

    def exchange_code(self, code: str, redirect_uri: str | None = None) -> TokenSet:
        """Trade the authorization code (usable once) for tokens."""
        redirect = redirect_uri or self.redirect_uri
        if not redirect:
            raise QboConfigurationError("QuickBooks OAuth needs a redirect_uri")
        return self._token_call(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}, what="code exchange"
        )

    def refresh(self, refresh_token: str) -> TokenSet:
        """New tokens. The refresh token may rotate: persist the returned one before using it anywhere."""
        return self._token_call({"grant_type": "refresh_token", "refresh_token": refresh_token}, what="refresh")

    def revoke(self, token: str) -> None:
        """Revoke a refresh token (which also ends its access tokens) or an access token."""
        self._post(self.revoke_url, json_body={"token": token}, what="revoke")

    # --- internals
    # -------------------------------------------------------------------------------------------

    def _token_call(self, form: dict[str, str], *, what: str) -> TokenSet:
        now = self._clock()
        response = self._post(
            self.token_url,
            form=form,
            extra_headers={"x-include-refresh-token-hard-expires-in": "true"},
            what=what,
        )
        try:
            data = response.json()
        except ValueError as exc:
            raise QboProtocolError(
                f"OAuth {what}: token endpoint answered non-JSON", status=response.status_code
            ) from exc
        if not isinstance(data, Mapping):
            raise QboProtocolError(f"OAuth {what}: token endpoint answered an unexpected shape")
        tokens = TokenSet.from_response(data, now=now)
        logger.info("QBO OAuth %s succeeded; access token valid until %s", what, tokens.expires_at.isoformat())
        return tokens

    def _post(
        self,
        url: str,
        *,
        what: str,
        form: dict[str, str] | None = None,
        json_body: dict[str, str] | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> requests.Response:
        headers = {"Accept": "application/json", **(extra_headers or {})}
        try:
            response = self._session.post(
                url,
                data=form,
                json=json_body,
                headers=headers,
                auth=(self.client_id, self._client_secret),
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            # str(exc) can quote the URL but never the form body or headers; keep only the exception type.
            raise QboTransportError(f"OAuth {what}: {type(exc).__name__} talking to {url}") from None
        if response.status_code < 400:
            return response
        raise self._error(response, what)

    def _error(self, response: requests.Response, what: str) -> Exception:
        status = response.status_code
        tid = response.headers.get("intuit_tid") or response.headers.get("intuit-tid")
        try:
            data = response.json()
        except ValueError:
            data = None
        code = data.get("error") if isinstance(data, Mapping) else None
        description = data.get("error_description") if isinstance(data, Mapping) else None
        description = redact(str(description)) if description else None
        logger.warning("QBO OAuth %s failed: HTTP %s error=%s intuit_tid=%s", what, status, code, tid)
        if code == "invalid_grant":
            return QboReauthRequired(
                f"OAuth {what} refused with invalid_grant: reconnect the QuickBooks company",
                status=status,
                code=code,
                detail=description,
                intuit_tid=tid,
            )
        if status >= 500:
            return QboServerError(f"OAuth {what}: server error", status=status, code=code, intuit_tid=tid)
        if code is None:
            return QboProtocolError(
                f"OAuth {what}: HTTP {status} with an unreadable body", status=status, intuit_tid=tid
            )
        return QboAuthError(
            f"OAuth {what} refused: {code}", status=status, code=str(code), detail=description, intuit_tid=tid
        )
