"""OAuth 2.0 as Intuit runs it: authorization codes, access tokens, rotating refresh tokens, revoke.

* An authorization code works once, for ``code_ttl`` seconds, with the redirect_uri it was issued for.
* Access tokens live ``access_token_ttl`` seconds (3600), then API calls get 401.
* A refresh returns the *same* refresh token until it is ``refresh_rotate_after`` seconds old (24 h), then a
  new one. The old token keeps working (returning the successor) until the successor has been used once;
  after that the old one gets ``400 {"error": "invalid_grant"}``. Refresh tokens also expire after
  ``refresh_token_ttl`` (100 days) without use.
* Revoking either token of a connection ends the whole connection (all its tokens).

All durations are divided by the sandbox's ``time_scale``.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

REFRESH_TTL = 8_726_400  # x_refresh_token_expires_in (~101 days)
CODE_TTL = 300


@dataclass
class Grant:
    id: str
    realm_id: str
    client_id: str
    scope: str
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    grant_id: str
    issued_at: float
    last_used: float
    successor: str | None = None
    used: bool = False
    dead: bool = False


@dataclass
class AccessToken:
    token: str
    grant_id: str
    realm_id: str
    expires_at: float


@dataclass
class Code:
    code: str
    realm_id: str
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: float


@dataclass
class OAuthStore:
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str | None = None):
        super().__init__(error)
        self.status, self.error, self.description = status, error, description

    def body(self) -> dict[str, str]:
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


class OAuth:
    def __init__(self, sandbox: Any):
        self.sb = sandbox
        self.lock = threading.Lock()
        self.store = OAuthStore()

    # ------------------------------------------------------------------ helpers
    def _scaled(self, seconds: float) -> float:
        return seconds / self.sb.options["time_scale"]

    def check_client(self, auth_header: str | None, form: dict[str, str]) -> str:
        client_id = form.get("client_id", "")
        secret = form.get("client_secret", "")
        if auth_header and auth_header.lower().startswith("basic "):
            try:
                raw = base64.b64decode(auth_header[6:].strip()).decode("utf-8")
                client_id, _, secret = raw.partition(":")
            except Exception:
                raise OAuthError(401, "invalid_client") from None
        want_id, want_secret = self.sb.options["client_id"], self.sb.options["client_secret"]
        if want_id is not None and (client_id != want_id or (want_secret is not None and secret != want_secret)):
            raise OAuthError(401, "invalid_client")
        if not client_id:
            raise OAuthError(401, "invalid_client")
        return client_id

    # ------------------------------------------------------------------ authorize
    def authorize(self, client_id: str, redirect_uri: str, scope: str, realm_id: str) -> str:
        want = self.sb.options["client_id"]
        if want is not None and client_id != want:
            raise OAuthError(400, "invalid_client")
        if not redirect_uri:
            raise OAuthError(400, "invalid_request", "redirect_uri is required")
        code = "AB11" + secrets.token_urlsafe(32)
        with self.lock:
            self.store.codes[code] = Code(code, realm_id, client_id, redirect_uri, scope,
                                          self.sb.clock.time() + self._scaled(CODE_TTL))
        return code

    # ------------------------------------------------------------------ tokens
    def exchange_code(self, client_id: str, code: str, redirect_uri: str) -> dict:
        now = self.sb.clock.time()
        with self.lock:
            rec = self.store.codes.pop(code, None)  # a code works once
            if rec is None or rec.expires_at < now or rec.client_id != client_id:
                raise OAuthError(400, "invalid_grant")
            if redirect_uri != rec.redirect_uri:
                raise OAuthError(400, "invalid_grant", "redirect_uri mismatch")
            grant = Grant(secrets.token_hex(8), rec.realm_id, client_id, rec.scope)
            self.store.grants[grant.id] = grant
            return self._issue(grant, None, now)

    def issue(self, realm_id: str, client_id: str = "sandbox-test-client") -> dict:
        now = self.sb.clock.time()
        with self.lock:
            grant = Grant(secrets.token_hex(8), realm_id, client_id, "com.intuit.quickbooks.accounting")
            self.store.grants[grant.id] = grant
            return self._issue(grant, None, now)

    def _issue(self, grant: Grant, refresh: RefreshToken | None, now: float) -> dict:
        access = "eyJ" + secrets.token_urlsafe(48)
        ttl = self._scaled(self.sb.options["access_token_ttl"])
        self.store.access[access] = AccessToken(access, grant.id, grant.realm_id, now + ttl)
        if refresh is None:
            tok = "AB11" + secrets.token_urlsafe(36)
            refresh = RefreshToken(tok, grant.id, now, now)
            self.store.refresh[tok] = refresh
        return {
            "token_type": "bearer",
            "expires_in": int(self.sb.options["access_token_ttl"]),
            "refresh_token": refresh.token,
            "x_refresh_token_expires_in": REFRESH_TTL,
            "access_token": access,
        }

    def refresh(self, client_id: str, token: str) -> dict:
        now = self.sb.clock.time()
        with self.lock:
            rec = self.store.refresh.get(token)
            if rec is None or rec.dead:
                raise OAuthError(400, "invalid_grant")
            grant = self.store.grants.get(rec.grant_id)
            if grant is None or grant.revoked:
                raise OAuthError(400, "invalid_grant")
            if self.sb.options["client_id"] is not None and grant.client_id != client_id:
                raise OAuthError(400, "invalid_grant")
            if now - rec.last_used > self._scaled(REFRESH_TTL):
                rec.dead = True
                raise OAuthError(400, "invalid_grant")
            if rec.successor is not None:
                succ = self.store.refresh[rec.successor]
                if succ.used or succ.dead:
                    rec.dead = True
                    raise OAuthError(400, "invalid_grant")
                rec.last_used = now
                return self._issue(grant, succ, now)  # the successor, again
            rec.used = True
            rec.last_used = now
            # using this token retires its predecessor(s)
            for other in self.store.refresh.values():
                if other.successor == rec.token:
                    other.dead = True
            if now - rec.issued_at >= self._scaled(self.sb.options["refresh_rotate_after"]):
                new = RefreshToken("AB11" + secrets.token_urlsafe(36), grant.id, now, now)
                self.store.refresh[new.token] = new
                rec.successor = new.token
                return self._issue(grant, new, now)
            return self._issue(grant, rec, now)

    def revoke(self, token: str) -> None:
        with self.lock:
            grant_id = None
            if token in self.store.refresh:
                grant_id = self.store.refresh[token].grant_id
            elif token in self.store.access:
                grant_id = self.store.access[token].grant_id
            if grant_id is None:
                raise OAuthError(400, "invalid_request", "Token not found")
            self.store.grants[grant_id].revoked = True
            for rec in self.store.refresh.values():
                if rec.grant_id == grant_id:
                    rec.dead = True
            for tok in [t for t, a in self.store.access.items() if a.grant_id == grant_id]:
                del self.store.access[tok]

    def expire_access_tokens(self, realm_id: str) -> int:
        with self.lock:
            n = 0
            for rec in self.store.access.values():
                if rec.realm_id == realm_id:
                    rec.expires_at = 0
                    n += 1
            return n

    # ------------------------------------------------------------------ API auth
    def check_access(self, token: str | None, realm_id: str) -> str | None:
        """None when fine, else 'expired' / 'invalid' / 'forbidden'."""
        if not token:
            return "invalid"
        rec = self.store.access.get(token)
        if rec is None:
            return "invalid"
        if rec.expires_at <= self.sb.clock.time():
            return "expired"
        if rec.realm_id != realm_id:
            return "forbidden"
        return None

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict:
        with self.lock:
            now = self.sb.clock.time()
            return {
                "grants": [asdict(g) for g in self.store.grants.values() if not g.revoked],
                "refresh": [asdict(r) for r in self.store.refresh.values() if not r.dead],
                "access": [asdict(a) for a in self.store.access.values() if a.expires_at > now],
            }

    def load_state(self, data: dict) -> None:
        with self.lock:
            for g in data.get("grants", []):
                self.store.grants[g["id"]] = Grant(**g)
            for r in data.get("refresh", []):
                self.store.refresh[r["token"]] = RefreshToken(**r)
            for a in data.get("access", []):
                self.store.access[a["token"]] = AccessToken(**a)
