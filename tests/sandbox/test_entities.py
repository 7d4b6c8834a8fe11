"""Create / read / update rules for Customer, Item, Invoice, Payment, Account, CompanyInfo."""

from __future__ import annotations

import re

from tests.sandbox.conftest import fault_code, sample

META_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[78]:00$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-0[78]:00$")


def test_new_realm_has_income_account_and_companyinfo(api):
    acc = api.read("Account", "1")
    assert acc["AccountType"] == "Income" and acc["Classification"] == "Revenue" and acc["Active"] is True
    r = api.get(f"companyinfo/{api.realm}")
    assert r.status_code == 200
    info = r.json()["CompanyInfo"]
    assert info["Country"] == "US" and info["Id"] == "1"
    assert TIME_RE.match(r.json()["time"])
    assert api.query("select count(*) from Customer").json()["QueryResponse"] == {"totalCount": 0}


def test_customer_create_matches_recorded_shape(api):
    recorded = sample("customer_response.json")
    r = api.post("customer", {"DisplayName": "Doe5, Jane"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"Customer", "time"}
    assert TIME_RE.match(body["time"])
    cust = body["Customer"]
    # every field of the recording except the tax code is there, with the same types
    for key, value in recorded["Customer"].items():
        if key == "DefaultTaxCodeRef":
            continue
        assert key in cust, key
        assert type(cust[key]) is type(value), key
    assert cust["SyncToken"] == "0" and isinstance(cust["Id"], str)
    assert META_RE.match(cust["MetaData"]["CreateTime"])
    assert cust["FullyQualifiedName"] == cust["PrintOnCheckName"] == "Doe5, Jane"


def test_customer_read_full_and_sparse_update_and_stale_synctoken(api):
    c = api.customer("Jack Moe", PrimaryPhone={"FreeFormNumber": "(415) 444-1234"}, CompanyName="Moe Inc")
    # full update: omitted writable fields are cleared
    r = api.post("customer", {"Id": c["Id"], "SyncToken": "0", "DisplayName": "Jack Moe",
                              "PrimaryPhone": {"FreeFormNumber": "(415) 444-9999"}})
    assert r.status_code == 200
    upd = r.json()["Customer"]
    assert upd["SyncToken"] == "1" and "CompanyName" not in upd
    assert upd["MetaData"]["CreateTime"] == c["MetaData"]["CreateTime"]
    # sparse update: only given fields change
    r = api.post("customer", {"Id": c["Id"], "SyncToken": "1", "sparse": True, "GivenName": "Jack"})
    sp = r.json()["Customer"]
    assert sp["SyncToken"] == "2" and sp["PrimaryPhone"]["FreeFormNumber"] == "(415) 444-9999"
    assert sp["GivenName"] == "Jack"
    # stale SyncToken -> 5010
    r = api.post("customer", {"Id": c["Id"], "SyncToken": "1", "sparse": True, "GivenName": "Jim"})
    assert r.status_code == 400 and fault_code(r) == "5010"
    assert r.json()["Fault"]["type"] == "ValidationFault"
    assert api.read("Customer", c["Id"]) == sp


def test_customer_displayname_unique_across_active_and_inactive(api):
    recorded = sample("fault_6240_duplicate_name_response.json")
    c = api.customer("Amy's Bird Sanctuary")
    r = api.post("customer", {"DisplayName": "amy's bird sanctuary"})
    assert r.status_code == 400
    err = r.json()["Fault"]["Error"][0]
    assert err["code"] == "6240" and err["Message"] == recorded["Fault"]["Error"][0]["Message"]
    # deactivate (the only "delete" a name-list entity has); the name stays taken
    r = api.post("customer", {"Id": c["Id"], "SyncToken": c["SyncToken"], "sparse": True, "Active": False})
    assert r.json()["Customer"]["Active"] is False
    r = api.post("customer", {"DisplayName": "Amy's Bird Sanctuary"})
    assert fault_code(r) == "6240"


def test_customer_displayname_derived_or_required(api):
    c = api.create("Customer", {"GivenName": "Ann", "FamilyName": "Lee"})
    assert c["DisplayName"] == "Ann Lee"
    r = api.post("customer", {"Notes": "no name"})
    assert r.status_code == 400 and fault_code(r) == "2020"


def test_name_list_entities_cannot_be_deleted(api):
    c = api.customer()
    r = api.post("customer", {"Id": c["Id"], "SyncToken": "0"}, operation="delete")
    assert r.status_code == 400 and fault_code(r) == "500"
    i = api.item()
    r = api.post("item", {"Id": i["Id"], "SyncToken": "0"}, operation="delete")
    assert r.status_code == 400 and fault_code(r) == "500"
    assert api.read("Customer", c["Id"])["Active"] is True


def test_unknown_property_and_bad_ids(api):
    r = api.post("customer", {"DisplayName": "X", "BadJson": 1})
    assert r.status_code == 400 and fault_code(r) == "2010"
    r = api.get("customer/1.5")
    assert fault_code(r) == "2030" and r.json()["Fault"]["Error"][0]["element"] == "Id"
    r = api.get("customer/999")
    assert r.status_code == 400 and fault_code(r) == "610"
    r = api.get("customer/1/5")
    assert fault_code(r) == "500" and r.json()["Fault"]["Error"][0]["Message"] == "Unsupported Operation"
    r = api.post("vendor", {"DisplayName": "V"})
    assert fault_code(r) == "500"


def test_item_rules(api):
    recorded = sample("item_service_create_response.json")["Item"]
    r = api.post("item", {"Name": "Garden Design", "Type": "Service", "IncomeAccountRef": {"value": "1"}})
    item = r.json()["Item"]
    assert set(recorded) <= set(item)
    assert item["IncomeAccountRef"] == {"value": "1", "name": "Sales of Product Income"}
    assert fault_code(api.post("item", {"Name": "garden design", "IncomeAccountRef": {"value": "1"}})) == "6240"
    assert fault_code(api.post("item", {"Name": "No account", "Type": "Service"})) == "2020"
    assert fault_code(api.post("item", {"Name": "Bad account", "IncomeAccountRef": {"value": "77"}})) == "610"
    # inactive account cannot be referenced
    acc = api.create("Account", {"Name": "Other Income", "AccountType": "Income"})
    api.post("account", {"Id": acc["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    assert fault_code(api.post("item", {"Name": "Z", "IncomeAccountRef": {"value": acc["Id"]}})) == "610"


def test_invoice_totals_computed_server_side(api):
    c, i = api.customer(), api.item()
    r = api.post("invoice", {"CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 100.0, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": i["Id"]},
                                                                                       "Qty": 4, "UnitPrice": 25}},
        {"Amount": 37.5, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": i["Id"]},
                                                                                      "Qty": 1.5, "UnitPrice": 25}},
        {"Amount": 999, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
    ], "TotalAmt": 1})
    assert r.status_code == 200, r.text
    inv = r.json()["Invoice"]
    recorded = sample("invoice_create_response.json")["Invoice"]
    for key in ("DocNumber", "TxnDate", "DueDate", "LinkedTxn", "Line", "TxnTaxDetail", "CustomerRef",
                "TotalAmt", "Balance", "EmailStatus", "PrintStatus", "AllowOnlinePayment", "CurrencyRef"):
        assert key in inv and key in recorded
    assert inv["TotalAmt"] == 137.5 and inv["Balance"] == 137.5
    assert [ln["LineNum"] for ln in inv["Line"][:2]] == [1, 2] and inv["Line"][0]["Id"] == "1"
    assert inv["Line"][-1] == {"Amount": 137.5, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
    assert inv["CustomerRef"] == {"value": c["Id"], "name": c["DisplayName"]}
    assert inv["Line"][0]["SalesItemLineDetail"]["ItemRef"]["name"] == i["Name"]
    assert api.read("Customer", c["Id"])["Balance"] == 137.5


def test_invoice_amount_must_equal_qty_times_price(api):
    c, i = api.customer(), api.item()
    r = api.post("invoice", {"CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 90, "DetailType": "SalesItemLineDetail",
         "SalesItemLineDetail": {"ItemRef": {"value": i["Id"]}, "Qty": 4, "UnitPrice": 25}}]})
    assert r.status_code == 400 and fault_code(r) == "6000"
    # within rounding is fine: 3 x 3.333 = 9.999 -> 10.00
    r = api.post("invoice", {"CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 10.00, "DetailType": "SalesItemLineDetail",
         "SalesItemLineDetail": {"ItemRef": {"value": i["Id"]}, "Qty": 3, "UnitPrice": 3.333}}]})
    assert r.status_code == 200, r.text


def test_invoice_references_must_exist_and_be_active(api):
    c, i = api.customer(), api.item()
    assert fault_code(api.post("invoice", {"CustomerRef": {"value": "999"}, "Line": [
        {"Amount": 1, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": i["Id"]}}}
    ]})) == "610"
    api.post("item", {"Id": i["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    r = api.post("invoice", {"CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 1, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": i["Id"]}}}]})
    assert fault_code(r) == "610"
    assert "Object Not Found" in r.json()["Fault"]["Error"][0]["Message"]
    api.post("customer", {"Id": c["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    i2 = api.item("Other")
    assert fault_code(api.post("invoice", {"CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 1, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": i2["Id"]}}}
    ]})) == "610"
    assert fault_code(api.post("invoice", {"CustomerRef": {"value": c["Id"]}})) in ("2020", "610")


def test_invoice_update_sparse_and_full(api):
    c, i = api.customer(), api.item()
    inv = api.invoice(c["Id"], i["Id"], 100)
    r = api.post("invoice", {"Id": inv["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "hello"})
    up = r.json()["Invoice"]
    assert up["SyncToken"] == "1" and up["PrivateNote"] == "hello" and up["TotalAmt"] == 100.0
    assert up["DocNumber"] == inv["DocNumber"]
    body = dict(up, Line=[{"Amount": 50, "DetailType": "SalesItemLineDetail",
                           "SalesItemLineDetail": {"ItemRef": {"value": i["Id"]}}}])
    body.pop("PrivateNote")
    r = api.post("invoice", body)
    full = r.json()["Invoice"]
    assert full["TotalAmt"] == 50.0 and full["Balance"] == 50.0 and "PrivateNote" not in full
    assert fault_code(api.post("invoice", dict(body, SyncToken="0"))) == "5010"


def test_invoice_void(api):
    recorded = sample("invoice_void_response.json")["Invoice"]
    c, i = api.customer(), api.item()
    inv = api.invoice(c["Id"], i["Id"], 100)
    r = api.post("invoice", {"Id": inv["Id"], "SyncToken": "0"}, operation="void")
    assert r.status_code == 200
    v = r.json()["Invoice"]
    assert v["SyncToken"] == "1" and v["PrivateNote"] == recorded["PrivateNote"] == "Voided"
    assert v["TotalAmt"] == 0 and v["Balance"] == 0 and all(ln["Amount"] == 0 for ln in v["Line"])
    assert api.read("Invoice", inv["Id"])["TotalAmt"] == 0  # still there, still readable
    assert api.read("Customer", c["Id"])["Balance"] == 0
    # a note is kept after the Voided marker
    inv2 = api.invoice(c["Id"], i["Id"], 10, PrivateNote="rush job")
    v2 = api.post("invoice", {"Id": inv2["Id"], "SyncToken": "0"}, operation="void").json()["Invoice"]
    assert v2["PrivateNote"].startswith("Voided") and "rush job" in v2["PrivateNote"]


def test_invoice_delete(api):
    recorded = sample("invoice_delete_response.json")
    c, i = api.customer(), api.item()
    inv = api.invoice(c["Id"], i["Id"], 100)
    assert fault_code(api.post("invoice", {"Id": inv["Id"], "SyncToken": "5"}, operation="delete")) == "5010"
    r = api.post("invoice", {"Id": inv["Id"], "SyncToken": "0"}, operation="delete")
    assert r.status_code == 200
    assert r.json()["Invoice"] == dict(recorded["Invoice"], Id=inv["Id"])
    assert fault_code(api.get(f"invoice/{inv['Id']}")) == "610"
    assert fault_code(api.post("invoice", {"Id": inv["Id"], "SyncToken": "0"}, operation="delete")) == "610"


def test_payment_applied_to_invoices(api):
    c, i = api.customer(), api.item()
    inv1 = api.invoice(c["Id"], i["Id"], 459)
    inv2 = api.invoice(c["Id"], i["Id"], 100)
    r = api.post("payment", {"TotalAmt": 320, "CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 220, "LinkedTxn": [{"TxnId": inv1["Id"], "TxnType": "Invoice"}]},
        {"Amount": 100, "LinkedTxn": [{"TxnId": inv2["Id"], "TxnType": "Invoice"}]}]})
    assert r.status_code == 200, r.text
    pay = r.json()["Payment"]
    recorded = sample("payment_response.json")["Payment"]
    assert set(recorded) <= set(pay) | {"PaymentMethodRef"}
    assert pay["UnappliedAmt"] == 0 and pay["TotalAmt"] == 320.0
    a = api.read("Invoice", inv1["Id"])
    assert a["Balance"] == 239.0 and a["TotalAmt"] == 459.0
    assert a["LinkedTxn"] == [{"TxnId": pay["Id"], "TxnType": "Payment"}]
    assert a["SyncToken"] == "1"
    b = api.read("Invoice", inv2["Id"])
    assert b["Balance"] == 0 and b["LinkedTxn"][0]["TxnId"] == pay["Id"]
    assert api.read("Customer", c["Id"])["Balance"] == 239.0
    # a second payment: two LinkedTxn
    p2 = api.create("Payment", {"TotalAmt": 39, "CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 39, "LinkedTxn": [{"TxnId": inv1["Id"], "TxnType": "Invoice"}]}]})
    a = api.read("Invoice", inv1["Id"])
    assert a["Balance"] == 200.0 and [lt["TxnId"] for lt in a["LinkedTxn"]] == [pay["Id"], p2["Id"]]
    # overpaying an invoice is refused; unapplied payments are fine
    assert fault_code(api.post("payment", {"TotalAmt": 500, "CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 500, "LinkedTxn": [{"TxnId": inv1["Id"], "TxnType": "Invoice"}]}]})) == "6000"
    un = api.create("Payment", {"TotalAmt": 100, "CustomerRef": {"value": c["Id"]}})
    assert un["UnappliedAmt"] == 100.0
    # invoices with payments cannot be voided/deleted; deleting the payment reopens the invoice
    assert fault_code(api.post("invoice", {"Id": inv1["Id"], "SyncToken": a["SyncToken"]},
                               operation="void")) == "6000"
    r = api.post("payment", {"Id": p2["Id"], "SyncToken": p2["SyncToken"]}, operation="delete")
    assert r.json()["Payment"]["status"] == "Deleted"
    a2 = api.read("Invoice", inv1["Id"])
    assert a2["Balance"] == 239.0 and len(a2["LinkedTxn"]) == 1 and int(a2["SyncToken"]) > int(a["SyncToken"])


def test_payment_requires_total_and_existing_invoice(api):
    c = api.customer()
    assert fault_code(api.post("payment", {"CustomerRef": {"value": c["Id"]}})) == "2020"
    assert fault_code(api.post("payment", {"TotalAmt": 5, "CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 5, "LinkedTxn": [{"TxnId": "404", "TxnType": "Invoice"}]}]})) == "610"


def test_payment_void_unapplies(api):
    c, i = api.customer(), api.item()
    inv = api.invoice(c["Id"], i["Id"], 100)
    p = api.create("Payment", {"TotalAmt": 100, "CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 100, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}]})
    # python-quickbooks voids payments with operation=update&include=void and a sparse body
    r = api.post("payment", {"Id": p["Id"], "SyncToken": p["SyncToken"], "sparse": True},
                 operation="update", include="void")
    v = r.json()["Payment"]
    assert v["TotalAmt"] == 0 and v["PrivateNote"].startswith("Voided")
    inv2 = api.read("Invoice", inv["Id"])
    assert inv2["Balance"] == 100.0 and inv2["LinkedTxn"] == []


def test_decimal_money_round_trip(api):
    c = api.customer()
    i = api.item("Precise", price="0.9090889")
    assert api.read("Item", i["Id"])["UnitPrice"] == 0.9090889
    inv = api.create("Invoice", {"CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 0.1, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": i["Id"]}}},
        {"Amount": 0.2, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": i["Id"]}}},
    ]})
    assert inv["TotalAmt"] == 0.3  # Decimal arithmetic: not 0.30000000000000004
