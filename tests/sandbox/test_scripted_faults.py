"""Scripted faults: "the next N requests matching ... are served fault X", in order, visible in stats."""

from __future__ import annotations

import pytest
import requests

from qbo_sync.sandbox import Sandbox
from tests.sandbox.conftest import Api, fault_code


def test_throttle_answers_the_recorded_429_and_is_counted_as_throttled(api, qbo_sandbox, qbo_fail_next):
    qbo_fail_next("throttle", times=2, operation="read")
    codes = [api.get("customer/1").status_code for _ in range(3)]
    assert codes == [429, 429, 400]  # then the usual answer: there is no customer 1
    qbo_fail_next("throttle")
    r = api.get(f"companyinfo/{api.realm}")
    assert r.headers["Content-Type"].startswith("application/xml") and '<Error code="3001">' in r.text
    stats = qbo_sandbox.stats(api.realm)
    assert stats["throttled"] == {"injected": 3} and stats["throttled_total"] == 3
    assert stats["scripted"] == {"throttle": 3}
    assert stats["requests"] == {"read": 1}  # refused at the gate, like a real 429, is not a served request


def test_server_errors_and_stale_object_answer_qbo_faults(api, qbo_fail_next, qbo_sandbox):
    qbo_fail_next("server_error")
    qbo_fail_next("service_unavailable")
    r1, r2 = api.get("customer/1"), api.get("customer/1")
    assert (r1.status_code, r2.status_code) == (500, 503)
    for r in (r1, r2):
        assert r.json()["Fault"]["type"] == "SystemFault" and fault_code(r) == "10000"
    assert "Service Unavailable" in r2.json()["Fault"]["Error"][0]["Detail"]
    customer = api.customer("Stale Co")
    qbo_fail_next("stale_object", entity="Customer", operation="update")
    r = api.post("customer", {**customer, "CompanyName": "Stale Co Ltd"})
    assert r.status_code == 400 and fault_code(r) == "5010"
    assert r.json()["Fault"]["Error"][0]["Message"] == "Stale Object Error"
    assert api.read("Customer", customer["Id"]).get("CompanyName") is None  # nothing written
    r = api.post("customer", {**customer, "CompanyName": "Stale Co Ltd"})  # the script is used up
    assert r.status_code == 200 and r.json()["Customer"]["SyncToken"] == "1"
    stats = qbo_sandbox.stats(api.realm)
    assert stats["faults_injected"] == {"500": 1, "503": 1} and stats["stale_objects"] == 1
    assert stats["scripted"] == {"server_error": 1, "service_unavailable": 1, "stale_object": 1}


def test_expired_token_expires_the_realms_tokens(api, qbo_sandbox, qbo_fail_next):
    qbo_fail_next("expired_token", operation="query")
    assert api.get(f"companyinfo/{api.realm}").status_code == 200  # not a query: untouched
    r = api.query("select * from Customer")
    assert r.status_code == 401 and r.json()["fault"]["error"][0]["code"] == "3200"
    assert "Token expired" in r.json()["fault"]["error"][0]["detail"]
    assert api.get(f"companyinfo/{api.realm}").status_code == 401  # the token really expired
    fresh = Api(qbo_sandbox, api.realm, qbo_sandbox.issue_tokens(api.realm)["access_token"])
    assert fresh.query("select * from Customer").status_code == 200
    assert qbo_sandbox.stats(api.realm)["scripted"] == {"expired_token": 1}


def test_lost_response_commits_then_drops_and_a_retry_replays(api, qbo_sandbox, qbo_fail_next):
    qbo_fail_next("lost_response", entity="Customer", operation="create")
    with pytest.raises(requests.ConnectionError):
        api.post("customer", {"DisplayName": "Saved, answer lost"}, requestid="scripted-lost-1")
    r = api.post("customer", {"DisplayName": "Saved, answer lost"}, requestid="scripted-lost-1")
    assert r.status_code == 200
    got = api.query("select * from Customer where DisplayName = 'Saved, answer lost'").json()["QueryResponse"]
    assert [c["Id"] for c in got["Customer"]] == [r.json()["Customer"]["Id"]]
    stats = qbo_sandbox.stats(api.realm)
    assert stats["lost_responses"] == 1 and stats["deduplicated"] == 1 and stats["scripted"] == {"lost_response": 1}


def test_reset_garbage_and_slow(api, qbo_sandbox, qbo_fail_next):
    qbo_fail_next("reset")
    with pytest.raises(requests.ConnectionError):
        api.get("customer/1")
    qbo_fail_next("garbage")
    r = api.get("customer/1")
    assert r.status_code in (200, 502)
    with pytest.raises(ValueError):
        r.json()
    stats = qbo_sandbox.stats(api.realm)
    assert (stats["resets"], stats["garbage"]) == (1, 1)
    with Sandbox(time_scale=1000) as sb:
        realm = sb.create_realm()
        sb.fail_next("slow", realm_id=realm)
        slow = Api(sb, realm, sb.issue_tokens(realm)["access_token"])
        assert slow.get(f"companyinfo/{realm}").status_code == 200
        assert sb.stats(realm)["slow"] == 1


def test_scripts_match_every_filter_and_are_consumed_in_order(api, qbo_sandbox, qbo_fail_next):
    other = qbo_sandbox.create_realm()
    other_api = Api(qbo_sandbox, other, qbo_sandbox.issue_tokens(other)["access_token"])
    first = qbo_fail_next("server_error", method="POST", entity="Item", path="/item")
    second = qbo_fail_next("service_unavailable", entity="item")
    assert [s["id"] for s in qbo_sandbox.stats(api.realm)["scripted_pending"]] == [first["id"], second["id"]]
    assert other_api.item().get("Id")  # another realm: not matched
    assert api.customer()["Id"]  # another entity
    assert api.query("select * from Customer").status_code == 200
    r = api.post("item", {"Name": "Widget", "Type": "Service", "IncomeAccountRef": {"value": "1"}})
    assert r.status_code == 500  # the first script first
    r = api.query("select * from Item")  # a query matches by its FROM
    assert r.status_code == 503
    assert api.item("Widget")["Name"] == "Widget"
    assert qbo_sandbox.stats(api.realm)["scripted_pending"] == []
    qbo_sandbox.clear_scripted_faults(other)


def test_write_operations_and_batches(api, qbo_sandbox, qbo_fail_next):
    customer = api.customer("Batchy")
    qbo_fail_next("server_error", operation="write", entity="Invoice")
    body = {"BatchItemRequest": [{"bId": "1", "Query": "select * from Customer"}]}
    assert api.post("batch", body).status_code == 200  # a batch without an invoice
    item = api.item()
    body = {"BatchItemRequest": [{"bId": "1", "operation": "create", "Invoice": {
        "CustomerRef": {"value": customer["Id"]},
        "Line": [{"Amount": 25, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}}}]}}]}
    assert api.post("batch", body).status_code == 500
    assert api.post("batch", body).status_code == 200


def test_a_script_without_realm_matches_any_realm_and_a_throttled_call_does_not_consume_it(qbo_sandbox):
    a = qbo_sandbox.create_realm()
    api = Api(qbo_sandbox, a, qbo_sandbox.issue_tokens(a)["access_token"])
    qbo_sandbox.configure(a, rate_limit=1)
    try:
        assert api.get(f"companyinfo/{a}").status_code == 200
        script = qbo_sandbox.fail_next("server_error", operation="companyinfo")
        assert api.get(f"companyinfo/{a}").status_code == 429  # refused by the real throttle: not consumed
        assert qbo_sandbox.scripted_faults(a)[0]["remaining"] == 1
        qbo_sandbox.reset(a)  # a realm's reset keeps scripts for any realm
        assert api.get(f"companyinfo/{a}").status_code == 500
        assert qbo_sandbox.scripted_faults() == []
        assert script["realm_id"] is None
    finally:
        qbo_sandbox.clear_scripted_faults()
        qbo_sandbox.reset(a)


def test_admin_endpoint_sets_lists_and_clears_scripts(api, qbo_sandbox):
    base = f"{qbo_sandbox.base_url}/_sandbox/faults"
    r = requests.post(base, json={"realm_id": api.realm, "fault": "stale_object", "times": 2,
                                  "entity": "Customer", "operation": ["update", "delete"]}, timeout=5)
    assert r.status_code == 200
    script = r.json()["script"]
    assert script["remaining"] == 2 and script["operation"] == ["update", "delete"]
    listing = requests.get(base, params={"realm": api.realm}, timeout=5).json()
    assert [s["id"] for s in listing["scripted_pending"]] == [script["id"]]
    assert {f["name"] for f in listing["faults"]} >= {"throttle", "expired_token", "stale_object",
                                                     "lost_response", "server_error"}
    for bad in ({"fault": "nope"}, {"fault": "throttle", "operation": "fly"}, {"fault": "throttle", "times": 0},
                {"fault": "throttle", "colour": "red"}, {"times": 1}, {"fault": "throttle", "realm_id": "nope"}):
        assert requests.post(base, json=bad, timeout=5).status_code == 400, bad
    assert requests.delete(base, params={"realm": api.realm}, timeout=5).json() == {"cleared": 1}
    assert requests.post(base, json=["throttle"], timeout=5).status_code == 400  # not an object: no 500
    assert requests.put(base, json={}, timeout=5).status_code == 404
    assert qbo_sandbox.scripted_faults(api.realm) == []


def test_reset_drops_a_realms_scripts(qbo_sandbox, qbo_realm, qbo_fail_next):
    qbo_fail_next("throttle", times=5)
    qbo_sandbox.reset(qbo_realm)
    assert qbo_sandbox.scripted_faults(qbo_realm) == []
