"""Throttles (429 XML), injected faults, resets, slow and lost responses, observability endpoint."""

from __future__ import annotations

import threading

import pytest
import requests

from qbo_sync.sandbox import Sandbox
from tests.sandbox.conftest import Api, sample


def test_rate_limit_429_xml_whatever_accept_says(api, qbo_sandbox):
    recorded = sample("fault_429_throttle_exceeded.xml")
    qbo_sandbox.configure(api.realm, rate_limit=5)
    codes = [api.get("customer/1").status_code for _ in range(5)]
    assert 429 not in codes
    r = api.get("companyinfo/" + api.realm)
    assert r.status_code == 429
    assert r.headers["Content-Type"].startswith("application/xml")
    text = r.text
    assert '<Error code="3001">' in text and '<Fault type="SERVICE">' in text
    # identical to the recording apart from the time attribute
    strip = [ln for ln in recorded.splitlines() if "IntuitResponse time" not in ln]
    assert [ln for ln in text.splitlines() if "IntuitResponse time" not in ln] == strip
    stats = qbo_sandbox.stats(api.realm)
    assert stats["throttled"] == {"rate": 1}
    # the window slides on the sandbox clock
    qbo_sandbox.advance(61)
    assert api.get("customer/1").status_code != 429


def test_concurrency_limit(qbo_sandbox, qbo_realm, qbo_tokens):
    qbo_sandbox.configure(qbo_realm, concurrency=2, latency_ms=300)
    api = Api(qbo_sandbox, qbo_realm, qbo_tokens["access_token"])
    results: list[int] = []

    def call():
        a = Api(qbo_sandbox, qbo_realm, qbo_tokens["access_token"])
        results.append(a.get(f"companyinfo/{qbo_realm}").status_code)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(200) >= 2 and results.count(429) >= 1
    assert qbo_sandbox.stats(qbo_realm)["throttled"]["concurrency"] >= 1
    qbo_sandbox.reset(qbo_realm)
    assert api.get(f"companyinfo/{qbo_realm}").status_code == 200


def test_batch_rate_limit(api, qbo_sandbox):
    qbo_sandbox.configure(api.realm, batch_rate=2)
    body = {"BatchItemRequest": [{"bId": "1", "Query": "select * from Customer"}]}
    assert [api.post("batch", body).status_code for _ in range(2)] == [200, 200]
    r = api.post("batch", body)
    assert r.status_code == 429 and "ThrottleExceeded" in r.text
    assert api.get("customer/1").status_code != 429  # ordinary calls still pass
    assert qbo_sandbox.stats(api.realm)["throttled"] == {"batch_rate": 1}


def test_injected_system_faults(api, qbo_sandbox):
    qbo_sandbox.configure(api.realm, fault_rate=1.0)
    r = api.get("customer/1")
    assert r.status_code in (500, 503)
    body = r.json()
    assert body["Fault"]["type"] == "SystemFault" and body["Fault"]["Error"][0]["code"] == "10000"
    assert "time" in body
    assert sum(qbo_sandbox.stats(api.realm)["faults_injected"].values()) == 1


def test_connection_reset(api, qbo_sandbox):
    qbo_sandbox.configure(api.realm, reset_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.get("customer/1")
    assert qbo_sandbox.stats(api.realm)["resets"] == 1
    qbo_sandbox.reset(api.realm)
    assert api.get(f"companyinfo/{api.realm}").status_code == 200


def test_lost_response_commits_then_drops(api, qbo_sandbox):
    qbo_sandbox.configure(api.realm, lost_response_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.post("customer", {"DisplayName": "Lost But Saved"}, requestid="lost-1")
    qbo_sandbox.reset(api.realm)
    got = api.query("select * from Customer where DisplayName = 'Lost But Saved'").json()["QueryResponse"]
    assert len(got["Customer"]) == 1  # the write happened
    # the client's retry with the same requestid gets the original answer, no duplicate
    r = api.post("customer", {"DisplayName": "Lost But Saved"}, requestid="lost-1")
    assert r.status_code == 200 and r.json()["Customer"]["Id"] == got["Customer"][0]["Id"]
    stats = qbo_sandbox.stats(api.realm)
    assert stats["lost_responses"] == 1 and stats["deduplicated"] == 1
    # reads are never "lost"
    qbo_sandbox.configure(api.realm, lost_response_rate=1.0)
    assert api.get("customer/1").status_code == 200


def test_slow_responses_and_latency_are_scaled():
    with Sandbox(time_scale=1000, slow_rate=1.0, latency_ms="100-400") as sb:
        realm = sb.create_realm()
        api = Api(sb, realm, sb.issue_tokens(realm)["access_token"])
        r = api.get(f"companyinfo/{realm}")
        assert r.status_code == 200 and r.elapsed.total_seconds() < 2
        assert sb.stats(realm)["slow"] == 1


def test_stats_endpoint_and_admin_api(api, qbo_sandbox):
    api.customer()
    api.query("select * from Customer")
    r = requests.get(f"{qbo_sandbox.base_url}/_sandbox/stats", params={"realm": api.realm}, timeout=5)
    s = r.json()
    assert s["realmId"] == api.realm
    assert s["requests"]["create"] == 1 and s["requests"]["query"] == 1
    assert s["entities"]["Customer"] == 1 and s["entities"]["Account"] >= 1
    for key in ("throttled", "faults_injected", "lost_responses", "deduplicated", "resets"):
        assert key in s
    r = requests.post(f"{qbo_sandbox.base_url}/_sandbox/configure",
                      json={"realm_id": api.realm, "rate_limit": 1}, timeout=5)
    assert r.status_code == 200 and qbo_sandbox.stats(api.realm)["overrides"] == {"rate_limit": 1}
    r = requests.post(f"{qbo_sandbox.base_url}/_sandbox/reset", json={"realm_id": api.realm}, timeout=5)
    assert qbo_sandbox.stats(api.realm)["overrides"] == {}
    r = requests.post(f"{qbo_sandbox.base_url}/_sandbox/realms", json={"tokens": True}, timeout=5).json()
    assert r["realmId"] in qbo_sandbox.realms and r["tokens"]["access_token"]
    all_stats = requests.get(f"{qbo_sandbox.base_url}/_sandbox/stats", timeout=5).json()
    assert api.realm in all_stats["realms"]
    bad = requests.post(f"{qbo_sandbox.base_url}/_sandbox/configure", json={"nonsense": 1}, timeout=5)
    assert bad.status_code == 400


def test_ten_concurrent_clients_no_errors(qbo_sandbox, qbo_realm, qbo_tokens):
    errors: list[str] = []

    def worker(n: int) -> None:
        a = Api(qbo_sandbox, qbo_realm, qbo_tokens["access_token"])
        try:
            for k in range(10):
                r = a.post("customer", {"DisplayName": f"W{n}-{k}"})
                if r.status_code != 200:
                    errors.append(r.text)
                r = a.query("select count(*) from Customer")
                if r.status_code != 200:
                    errors.append(r.text)
        except requests.RequestException as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    a = Api(qbo_sandbox, qbo_realm, qbo_tokens["access_token"])
    assert a.query("select count(*) from Customer").json()["QueryResponse"]["totalCount"] == 100


def test_time_scale_divides_windows_and_token_lifetime():
    with Sandbox(time_scale=60, rate_limit=3) as sb:
        realm = sb.create_realm()
        tokens = sb.issue_tokens(realm)
        api = Api(sb, realm, tokens["access_token"])
        assert [api.get(f"companyinfo/{realm}").status_code for _ in range(4)] == [200, 200, 200, 429]
        sb.advance(1.01)  # a "minute" is one second at time_scale 60
        assert api.get(f"companyinfo/{realm}").status_code == 200
        sb.advance(57)  # the 3600 s access token lives 60 s
        assert api.get(f"companyinfo/{realm}").status_code == 200
        sb.advance(3)
        assert api.get(f"companyinfo/{realm}").status_code == 401


def test_starter_data_company():
    with Sandbox(realms=["1234"], starter_data=True) as sb:
        api = Api(sb, "1234", sb.issue_tokens("1234")["access_token"])
        assert api.read("Customer", "1")["DisplayName"] == "Amy's Bird Sanctuary"
        assert api.read("Item", "1")["Name"] == "Services"
        invoices = api.query("select * from Invoice").json()["QueryResponse"]["Invoice"]
        assert len(invoices) == 3 and invoices[0]["Balance"] == 0 and 0 < invoices[1]["Balance"] < 337.5
        assert api.query("select count(*) from Payment").json()["QueryResponse"]["totalCount"] == 2


def test_garbage_bodies(api, qbo_sandbox):
    qbo_sandbox.configure(api.realm, garbage_rate=1.0)
    seen = set()
    for _ in range(12):
        r = api.get("customer/1")
        seen.add(r.status_code)
        with pytest.raises(ValueError):
            r.json()
    assert seen <= {200, 502}
    assert qbo_sandbox.stats(api.realm)["garbage"] == 12
