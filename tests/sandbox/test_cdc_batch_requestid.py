"""CDC, batch and requestid idempotency."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.sandbox.conftest import fault_code, sample


def iso(sb, delta_seconds=0.0) -> str:
    return datetime.fromtimestamp(sb.clock.time() + delta_seconds, UTC).isoformat()


# ------------------------------------------------------------------ CDC


def test_cdc_shape_and_deleted_stubs(api, qbo_sandbox):
    recorded = sample("cdc_response_with_deleted.json")
    since = iso(qbo_sandbox, -1)
    c, i = api.customer(), api.item()
    keep = api.invoice(c["Id"], i["Id"], 10)
    gone = api.invoice(c["Id"], i["Id"], 20)
    api.post("invoice", {"Id": gone["Id"], "SyncToken": "0"}, operation="delete")
    r = api.get("cdc", entities="Invoice,Customer,Payment", changedSince=since)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == set(recorded)
    groups = body["CDCResponse"][0]["QueryResponse"]
    assert isinstance(groups, list) and len(groups) == 3
    inv_group, cust_group, pay_group = groups
    assert pay_group == {}
    assert cust_group["Customer"][0]["Id"] == c["Id"] and cust_group["startPosition"] == 1
    invs = inv_group["Invoice"]
    assert invs[0]["Id"] == keep["Id"] and invs[0]["TotalAmt"] == 10.0
    stub = invs[-1]
    assert stub["status"] == "Deleted" and stub["Id"] == gone["Id"] and stub["domain"] == "QBO"
    assert set(stub) == set(recorded["CDCResponse"][0]["QueryResponse"][1]["Estimate"][2])
    assert inv_group["maxResults"] == 2


def test_cdc_only_changes_since_and_void_is_an_update(api, qbo_sandbox):
    c, i = api.customer(), api.item()
    inv = api.invoice(c["Id"], i["Id"], 10)
    qbo_sandbox.advance(10)
    since = iso(qbo_sandbox, -1)
    assert api.get("cdc", entities="Invoice", changedSince=since).json()["CDCResponse"][0]["QueryResponse"] == [{}]
    api.post("invoice", {"Id": inv["Id"], "SyncToken": "0"}, operation="void")
    got = api.get("cdc", entities="invoice", changedSince=since).json()["CDCResponse"][0]["QueryResponse"][0]
    assert got["Invoice"][0]["Id"] == inv["Id"] and "status" not in got["Invoice"][0]


def test_cdc_30_day_lookback(api, qbo_sandbox):
    r = api.get("cdc", entities="Customer", changedSince=iso(qbo_sandbox, -31 * 86400))
    assert r.status_code == 400 and "older than" in r.json()["Fault"]["Error"][0]["Detail"]
    assert api.get("cdc", entities="Customer", changedSince=iso(qbo_sandbox, -29 * 86400)).status_code == 200
    assert fault_code(api.get("cdc", entities="Customer")) == "2020"


def test_cdc_caps_at_1000_objects(api, qbo_sandbox):
    realm = qbo_sandbox.realm(api.realm)
    from qbo_sync.sandbox import entities

    with realm.lock:  # seed quickly, straight into the store
        now = qbo_sandbox.clock.time()
        for n in range(1005):
            entities.create(realm, "Customer", {"DisplayName": f"Bulk {n}"}, now + n / 1000)
    r = api.get("cdc", entities="Customer", changedSince=iso(qbo_sandbox, -5))
    grp = r.json()["CDCResponse"][0]["QueryResponse"][0]
    assert len(grp["Customer"]) == 1000 and grp["maxResults"] == 1000
    assert grp["Customer"][0]["DisplayName"] == "Bulk 0"  # oldest first


# ------------------------------------------------------------------ batch


def test_batch_mixed_items(api):
    recorded = sample("batch_response.json")
    c, i = api.customer("Existing"), api.item()
    inv = api.invoice(c["Id"], i["Id"], 10)
    stale_c = api.customer("Stale")
    api.post("customer", {"Id": stale_c["Id"], "SyncToken": "0", "sparse": True, "Notes": "moved on"})
    r = api.post("batch", {"BatchItemRequest": [
        {"bId": "bid1", "operation": "create", "Customer": {"DisplayName": "Boraski Family Store"}},
        {"bId": "bid2", "operation": "delete", "Invoice": {"Id": "999", "SyncToken": "0"}},
        {"bId": "bid3", "operation": "update", "Customer": {"Id": stale_c["Id"], "SyncToken": "0", "sparse": True,
                                                             "Notes": "x"}},
        {"bId": "bid4", "Query": "select * from Invoice where TotalAmt > '5.00'"},
        {"bId": "bid5", "operation": "create", "Customer": {"DisplayName": "Existing"}},
        {"bId": "bid6", "operation": "void", "Invoice": {"Id": inv["Id"], "SyncToken": "0"}},
    ]})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == set(recorded)
    items = {x["bId"]: x for x in body["BatchItemResponse"]}
    assert items["bid1"]["Customer"]["DisplayName"] == "Boraski Family Store"
    assert items["bid2"]["Fault"]["Error"][0]["code"] == "610"
    assert items["bid2"]["Fault"] == {**recorded["BatchItemResponse"][1]["Fault"]}
    assert items["bid3"]["Fault"]["Error"][0]["code"] == "5010"
    assert items["bid4"]["QueryResponse"]["Invoice"][0]["Id"] == inv["Id"]
    assert items["bid5"]["Fault"]["Error"][0]["code"] == "6240"
    assert items["bid6"]["Invoice"]["PrivateNote"] == "Voided"


def test_batch_size_limit(api, qbo_sandbox):
    many = [{"bId": str(n), "Query": "select * from Customer"} for n in range(31)]
    r = api.post("batch", {"BatchItemRequest": many})
    assert r.status_code == 400 and "Fault" in r.json()
    assert api.post("batch", {"BatchItemRequest": many[:30]}).status_code == 200
    qbo_sandbox.configure(api.realm, batch_size=10)
    assert api.post("batch", {"BatchItemRequest": many[:11]}).status_code == 400


def test_batch_requestid_replays_per_bid(api, qbo_sandbox):
    body = {"BatchItemRequest": [
        {"bId": "a", "operation": "create", "Customer": {"DisplayName": "Once A"}},
        {"bId": "b", "operation": "create", "Customer": {"DisplayName": "Once B"}}]}
    first = api.post("batch", body, requestid="batch-req-1").json()
    # retried with one more item: the known bIds are replayed, the new one runs
    body["BatchItemRequest"].append({"bId": "c", "operation": "create", "Customer": {"DisplayName": "Once C"}})
    second = api.post("batch", body, requestid="batch-req-1").json()
    by = {x["bId"]: x for x in second["BatchItemResponse"]}
    assert by["a"] == first["BatchItemResponse"][0] and by["b"] == first["BatchItemResponse"][1]
    assert by["c"]["Customer"]["DisplayName"] == "Once C"
    count = api.query("select count(*) from Customer").json()["QueryResponse"]["totalCount"]
    assert count == 3
    assert qbo_sandbox.stats(api.realm)["deduplicated"] == 2


# ------------------------------------------------------------------ requestid


def test_repeated_requestid_returns_original_and_writes_nothing(api, qbo_sandbox):
    r1 = api.post("customer", {"DisplayName": "Idem"}, requestid="req-123")
    r2 = api.post("customer", {"DisplayName": "Idem"}, requestid="req-123")
    assert r1.status_code == r2.status_code == 200
    assert r1.json() == r2.json()
    assert api.query("select count(*) from Customer").json()["QueryResponse"]["totalCount"] == 1
    assert qbo_sandbox.stats(api.realm)["deduplicated"] == 1
    # a different requestid is a different request (and here a duplicate name)
    r3 = api.post("customer", {"DisplayName": "Idem"}, requestid="req-124")
    assert fault_code(r3) == "6240"


def test_requestid_applies_to_updates_and_payments(api):
    c, i = api.customer(), api.item()
    inv = api.invoice(c["Id"], i["Id"], 100)
    body = {"TotalAmt": 40, "CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 40, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}]}
    p1 = api.post("payment", body, requestid="pay-1").json()
    p2 = api.post("payment", body, requestid="pay-1").json()
    assert p1 == p2
    assert api.read("Invoice", inv["Id"])["Balance"] == 60.0


def test_time_on_every_response(api):
    for r in (api.get("customer/1"), api.query("select * from Customer"), api.post("batch", {"BatchItemRequest": [
            {"bId": "1", "Query": "select * from Item"}]}), api.get("cdc", entities="Item",
                                                                    changedSince="2000-01-01")):
        assert "time" in r.json(), r.text
