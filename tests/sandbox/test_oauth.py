"""OAuth: authorize redirect, code exchange once, expiring access tokens, refresh rotation, revoke."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from qbo_sync.sandbox import Sandbox
from tests.sandbox.conftest import sample

REDIRECT = "http://localhost:9999/callback"


def authorize(sb, realm_id=None, client_id="app", state="xyz"):
    params = {"client_id": client_id, "response_type": "code", "scope": "com.intuit.quickbooks.accounting",
              "redirect_uri": REDIRECT, "state": state}
    if realm_id:
        params["realm_id"] = realm_id
    r = requests.get(f"{sb.base_url}/connect/oauth2", params=params, allow_redirects=False, timeout=5)
    assert r.status_code == 302
    loc = urlsplit(r.headers["Location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(loc.query).items()}


def token_call(sb, data, auth=("app", "secret")):
    return requests.post(f"{sb.base_url}/oauth2/v1/tokens/bearer", data=data, auth=auth,
                         headers={"Accept": "application/json"}, timeout=5)


def api_get(sb, realm, token):
    return requests.get(f"{sb.base_url}/v3/company/{realm}/companyinfo/{realm}",
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}, timeout=5)


def test_full_code_flow(qbo_sandbox, qbo_realm):
    back = authorize(qbo_sandbox, qbo_realm)
    assert back["state"] == "xyz" and back["realmId"] == qbo_realm and back["code"]
    r = token_call(qbo_sandbox, {"grant_type": "authorization_code", "code": back["code"], "redirect_uri": REDIRECT})
    assert r.status_code == 200
    tokens = r.json()
    recorded = sample("oauth_token_response.json")
    assert {"token_type", "expires_in", "refresh_token", "x_refresh_token_expires_in", "access_token"} <= set(
        tokens) <= set(recorded)
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 3600
    assert api_get(qbo_sandbox, qbo_realm, tokens["access_token"]).status_code == 200
    # a code works once
    r = token_call(qbo_sandbox, {"grant_type": "authorization_code", "code": back["code"], "redirect_uri": REDIRECT})
    assert r.status_code == 400 and r.json() == {"error": "invalid_grant"}


def test_authorize_creates_named_realm_or_uses_default(qbo_sandbox):
    back = authorize(qbo_sandbox, "4620816365283046970")
    assert back["realmId"] == "4620816365283046970" and "4620816365283046970" in qbo_sandbox.realms
    back = authorize(qbo_sandbox)
    assert back["realmId"] == qbo_sandbox.default_realm


def test_redirect_uri_must_match(qbo_sandbox, qbo_realm):
    back = authorize(qbo_sandbox, qbo_realm)
    r = token_call(qbo_sandbox, {"grant_type": "authorization_code", "code": back["code"],
                                 "redirect_uri": "http://evil/cb"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_expired_access_token_gets_recorded_401(qbo_sandbox, qbo_realm, qbo_tokens):
    recorded = sample("fault_401_token_expired_response.json")
    qbo_sandbox.expire_access_tokens(qbo_realm)
    r = api_get(qbo_sandbox, qbo_realm, qbo_tokens["access_token"])
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="Intuit", error="invalid_token"'
    body = r.json()
    assert set(body) == set(recorded)
    err = body["fault"]["error"][0]
    assert err["code"] == "3200" and err["message"] == recorded["fault"]["error"][0]["message"]
    assert err["detail"].startswith("Token expired: ") and body["fault"]["type"] == "AUTHENTICATION"
    assert isinstance(body["time"], int)
    assert api_get(qbo_sandbox, qbo_realm, "garbage").status_code == 401
    assert requests.get(f"{qbo_sandbox.base_url}/v3/company/{qbo_realm}/customer/1", timeout=5).status_code == 401


def test_access_token_lifetime_on_sandbox_clock(qbo_sandbox, qbo_realm, qbo_tokens):
    assert api_get(qbo_sandbox, qbo_realm, qbo_tokens["access_token"]).status_code == 200
    qbo_sandbox.advance(3601)
    assert api_get(qbo_sandbox, qbo_realm, qbo_tokens["access_token"]).status_code == 401


def test_token_for_other_realm_is_forbidden(qbo_sandbox, qbo_realm, qbo_tokens):
    other = qbo_sandbox.create_realm()
    r = api_get(qbo_sandbox, other, qbo_tokens["access_token"])
    assert r.status_code == 403 and r.json()["fault"]["error"][0]["code"] == "3100"


def test_refresh_rotation_old_token_dies_once_new_one_used():
    with Sandbox(refresh_rotate_after=100) as sb:
        realm = sb.create_realm()
        t0 = sb.issue_tokens(realm)
        # within the rotation window a refresh returns the same refresh token
        r = token_call(sb, {"grant_type": "refresh_token", "refresh_token": t0["refresh_token"]})
        assert r.status_code == 200 and r.json()["refresh_token"] == t0["refresh_token"]
        assert api_get(sb, realm, r.json()["access_token"]).status_code == 200
        sb.advance(101)
        r1 = token_call(sb, {"grant_type": "refresh_token", "refresh_token": t0["refresh_token"]}).json()
        new = r1["refresh_token"]
        assert new != t0["refresh_token"]
        # until the new one is used, the old one still answers (with the new one)
        again = token_call(sb, {"grant_type": "refresh_token", "refresh_token": t0["refresh_token"]}).json()
        assert again["refresh_token"] == new
        # use the new one: the old one is dead
        assert token_call(sb, {"grant_type": "refresh_token", "refresh_token": new}).status_code == 200
        r = token_call(sb, {"grant_type": "refresh_token", "refresh_token": t0["refresh_token"]})
        assert r.status_code == 400 and r.json() == {"error": "invalid_grant"}


def test_client_credentials_enforced_when_configured():
    with Sandbox(client_id="good", client_secret="s3cret") as sb:
        realm = sb.create_realm()
        back = authorize(sb, realm, client_id="good")
        r = token_call(sb, {"grant_type": "authorization_code", "code": back["code"], "redirect_uri": REDIRECT},
                       auth=("good", "wrong"))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        r = token_call(sb, {"grant_type": "authorization_code", "code": back["code"], "redirect_uri": REDIRECT},
                       auth=("good", "s3cret"))
        assert r.status_code == 200
        bad = requests.get(f"{sb.base_url}/connect/oauth2", params={
            "client_id": "other", "redirect_uri": REDIRECT, "response_type": "code", "state": "s"},
            allow_redirects=False, timeout=5)
        assert "error=invalid_client" in bad.headers["Location"]


def test_revoke_ends_the_connection(qbo_sandbox, qbo_realm, qbo_tokens):
    r = requests.post(f"{qbo_sandbox.base_url}/oauth2/v1/tokens/revoke", json={"token": qbo_tokens["refresh_token"]},
                      auth=("app", "x"), timeout=5)
    assert r.status_code == 200
    assert api_get(qbo_sandbox, qbo_realm, qbo_tokens["access_token"]).status_code == 401
    r = token_call(qbo_sandbox, {"grant_type": "refresh_token", "refresh_token": qbo_tokens["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("grant", ["password", ""])
def test_unsupported_grant(qbo_sandbox, grant):
    r = token_call(qbo_sandbox, {"grant_type": grant})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_minorversion_below_75_is_served_and_counted(api, qbo_sandbox):
    assert api.get(f"companyinfo/{api.realm}", minorversion="65").status_code == 200
    assert qbo_sandbox.stats(api.realm)["requests"]["old_minorversion"] == 1
