"""Customer merges (the accountant's UI operation): transactions move, the merged-away customer is deleted, a
Merge webhook names both ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import requests

from qbo_sync.sandbox import Sandbox
from tests.sandbox.conftest import Api, fault_code
from tests.sandbox.test_webhooks_state_cli import TOKEN, Receiver


def iso(sb, delta_seconds=0.0) -> str:
    return datetime.fromtimestamp(sb.clock.time() + delta_seconds, UTC).isoformat()


def test_a_merge_moves_transactions_and_deletes_the_merged_away_customer(api, qbo_sandbox, qbo_realm):
    lost, keep, i = api.customer("Jane Doe"), api.customer("Jane Doe Ltd"), api.item()
    inv = api.invoice(lost["Id"], i["Id"], 100)
    api.create("Payment", {"TotalAmt": 40, "CustomerRef": {"value": lost["Id"]}, "Line": [
        {"Amount": 40, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}]})
    since = iso(qbo_sandbox, -1)
    qbo_sandbox.advance(2)

    r = requests.post(f"{qbo_sandbox.base_url}/_sandbox/merge", timeout=10,
                      json={"realm_id": qbo_realm, "from_id": lost["Id"], "into_id": keep["Id"]})

    assert r.status_code == 200 and r.json()["Customer"]["Id"] == keep["Id"]
    moved = api.read("Invoice", inv["Id"])
    assert moved["CustomerRef"] == {"value": keep["Id"], "name": "Jane Doe Ltd"} and moved["SyncToken"] == "2"
    assert api.read("Customer", keep["Id"])["Balance"] == 60.0
    gone = api.get(f"customer/{lost['Id']}")
    assert gone.status_code == 400 and fault_code(gone) == "610"
    assert "Jane Doe'" not in api.query("select * from Customer where Active in (true, false)").text
    groups = api.get("cdc", entities="Customer,Invoice,Payment", changedSince=since).json()
    customers, invoices, payments = groups["CDCResponse"][0]["QueryResponse"]
    assert customers["Customer"][-1] == {"domain": "QBO", "status": "Deleted", "Id": lost["Id"],
                                         "MetaData": customers["Customer"][-1]["MetaData"]}
    assert invoices["Invoice"][0]["CustomerRef"]["value"] == keep["Id"]
    assert payments["Payment"][0]["CustomerRef"]["value"] == keep["Id"]
    # the name is free again (the record is deleted, not just inactive)
    assert api.customer("Jane Doe")["Id"] not in (lost["Id"], keep["Id"])


def test_merging_into_itself_or_an_unknown_customer_is_refused(api, qbo_sandbox, qbo_realm):
    c = api.customer()
    same = requests.post(f"{qbo_sandbox.base_url}/_sandbox/merge", timeout=10,
                         json={"realm_id": qbo_realm, "from_id": c["Id"], "into_id": c["Id"]})
    assert same.status_code == 400 and "itself" in same.json()["error"]
    unknown = requests.post(f"{qbo_sandbox.base_url}/_sandbox/merge", timeout=10,
                            json={"realm_id": qbo_realm, "from_id": "999", "into_id": c["Id"]})
    assert unknown.status_code == 400
    missing = requests.post(f"{qbo_sandbox.base_url}/_sandbox/merge", timeout=10, json={"realm_id": qbo_realm})
    assert missing.status_code == 400
    assert api.read("Customer", c["Id"])["Active"] is True


def test_the_merge_webhook_names_the_survivor_and_the_deleted_id():
    receiver = Receiver()
    for cloudevents in (False, True):
        receiver.received.clear()
        with Sandbox(webhook_url=receiver.url, verifier_token=TOKEN, cloudevents=cloudevents) as sb:
            realm = sb.create_realm()
            api = Api(sb, realm, sb.issue_tokens(realm)["access_token"])
            lost, keep = api.customer("A"), api.customer("B")
            assert sb.wait_for_webhooks()
            receiver.received.clear()
            sb.merge_customers(realm, lost["Id"], keep["Id"])
            assert sb.wait_for_webhooks()
            body = json.loads(receiver.received[0][1])
        if cloudevents:
            assert body[0]["type"] == "qbo.customer.merged.v1"
            assert body[0]["intuitentityid"] == keep["Id"] and body[0]["data"] == {"deletedid": lost["Id"]}
        else:
            entity = body["eventNotifications"][0]["dataChangeEvent"]["entities"][0]
            assert (entity["name"], entity["id"], entity["operation"], entity["deletedId"]) == (
                "Customer", keep["Id"], "Merge", lost["Id"])
    receiver.close()
