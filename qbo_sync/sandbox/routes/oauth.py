"""OAuth 2.0 routes: the authorize page (approves at once), token and revoke endpoints, the discovery document."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from ..oauth import OAuthError

if TYPE_CHECKING:
    from ..handler import Handler

PREFIXES = ("/oauth2/", "/connect/", "/.well-known/")
DISCOVERY = ("/.well-known/openid_configuration", "/.well-known/openid_sandbox_configuration")
NO_STORE = {"Cache-Control": "no-cache, no-store", "Pragma": "no-cache"}


def handle(h: Handler, method: str, path: str, params: dict, body: bytes) -> None:
    sb = h.sandbox
    sb.global_stats["oauth"] += 1
    try:
        if path in DISCOVERY:
            h.reply_json(200, discovery(base_of(h)))
            return
        if path == "/connect/oauth2" and method == "GET":
            authorize(h, params)
            return
        if method != "POST":
            raise OAuthError(405, "invalid_request", "method not allowed")
        form = form_of(body)
        client_id = sb.oauth.check_client(h.headers.get("Authorization"), form)
        if path == "/oauth2/v1/tokens/bearer":
            grant = form.get("grant_type")
            if grant == "authorization_code":
                tokens = sb.oauth.exchange_code(client_id, form.get("code", ""), form.get("redirect_uri", ""))
            elif grant == "refresh_token":
                tokens = sb.oauth.refresh(client_id, form.get("refresh_token", ""))
            else:
                raise OAuthError(400, "unsupported_grant_type")
            sb.mark_dirty()
            h.reply_json(200, tokens, headers=NO_STORE)
        elif path == "/oauth2/v1/tokens/revoke":
            sb.oauth.revoke(form.get("token", ""))
            sb.mark_dirty()
            h.reply(200, b"", headers=NO_STORE)
        else:
            h.reply_json(404, {"error": "not_found"})
    except OAuthError as err:
        headers = dict(NO_STORE)
        if err.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="Intuit"'
        h.reply_json(err.status, err.body(), headers=headers)


def base_of(h: Handler) -> str:
    host = h.headers.get("Host")
    return f"http://{host}" if host else h.sandbox.base_url


def discovery(base: str) -> dict:
    return {
        "issuer": base, "authorization_endpoint": f"{base}/connect/oauth2",
        "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
        "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
        "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
        "jwks_uri": f"{base}/oauth2/v1/keys", "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone",
                             "com.intuit.quickbooks.accounting", "com.intuit.quickbooks.payment"],
    }


def form_of(body: bytes) -> dict[str, str]:
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
            return {k: str(v) for k, v in data.items()}
        except ValueError:
            return {}
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def authorize(h: Handler, params: dict) -> None:
    sb = h.sandbox
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        h.reply_json(400, {"error": "invalid_request", "error_description": "redirect_uri is required"})
        return
    back: dict[str, str] = {}
    if params.get("response_type", "code") != "code":
        back = {"error": "unsupported_response_type"}
    else:
        realm_id = params.get("realm_id") or params.get("realmId")
        if realm_id:
            realm_id = sb.create_realm(realm_id)
        else:
            realm_id = sb.default_realm or sb.create_realm()
        try:
            code = sb.oauth.authorize(params.get("client_id", ""), redirect_uri, params.get("scope", ""),
                                      realm_id)
            back = {"code": code, "realmId": realm_id}
        except OAuthError as err:
            back = {"error": err.error}
    if "state" in params:
        back["state"] = params["state"]
    parts = urlsplit(redirect_uri)
    q = parts.query + ("&" if parts.query else "") + urlencode(back)
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, q, ""))
    h.reply(302, b"", content_type="text/html", headers={"Location": location})
