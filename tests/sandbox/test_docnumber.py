"""Invoice numbers under the company's "custom transaction numbers" preference (realm option)."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import fault_code


@pytest.fixture
def parts(api):
    return api.customer("Numbered Co")["Id"], api.item()["Id"]


def body(cust, item, **extra):
    return {"CustomerRef": {"value": cust}, "Line": [{"Amount": 25, "DetailType": "SalesItemLineDetail",
                                                      "SalesItemLineDetail": {"ItemRef": {"value": item}}}], **extra}


def test_custom_numbers_on_refuses_a_duplicate_unless_included(qbo_sandbox, api, parts):
    qbo_sandbox.configure(api.realm, custom_txn_numbers=True)
    cust, item = parts
    first = api.create("Invoice", body(cust, item, DocNumber="A-1"))
    assert first["DocNumber"] == "A-1"
    r = api.post("invoice", body(cust, item, DocNumber="A-1"))
    assert r.status_code == 400 and fault_code(r) == "6140"
    assert r.json()["Fault"] == {"Error": [{
        "Message": "Duplicate Document Number Error",
        "Detail": "Duplicate Document Number Error : You must specify a different number. This number has already "
                  f"been used. DocNumber=A-1 is assigned to TxnType=Invoice with TxnId={first['Id']}",
        "code": "6140", "element": ""}], "type": "ValidationFault"}
    assert api.query("select count(*) from Invoice").json()["QueryResponse"]["totalCount"] == 1
    r = api.post("invoice", body(cust, item, DocNumber="A-1"), include="allowduplicatedocnum")
    assert r.status_code == 200 and r.json()["Invoice"]["DocNumber"] == "A-1"
    dup = r.json()["Invoice"]
    r = api.post("invoice", {"Id": dup["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "edited"})
    assert r.status_code == 200  # keeping its (duplicate) number is not checked again
    # an update keeping its own number is fine; taking another's is not
    second = api.create("Invoice", body(cust, item, DocNumber="A-2"))
    r = api.post("invoice", body(cust, item, Id=second["Id"], SyncToken="0", DocNumber="A-2", PrivateNote="x"))
    assert r.status_code == 200
    r = api.post("invoice", {"Id": second["Id"], "SyncToken": "1", "sparse": True, "DocNumber": "A-1"})
    assert r.status_code == 400 and fault_code(r) == "6140"
    # none sent: the invoice has no number; AUTO_GENERATE asks for the next one
    assert "DocNumber" not in api.create("Invoice", body(cust, item))
    assert api.create("Invoice", body(cust, item, DocNumber="AUTO_GENERATE"))["DocNumber"].isdigit()
    # a voided invoice keeps its number
    r = api.post("invoice", {"Id": second["Id"], "SyncToken": "1"}, operation="void")
    assert r.status_code == 200
    assert fault_code(api.post("invoice", body(cust, item, DocNumber="A-2"))) == "6140"
    # numbers clash across sales forms: a credit memo's number is taken too
    memo = api.create("CreditMemo", body(cust, item, DocNumber="CM-1"))
    r = api.post("invoice", body(cust, item, DocNumber="CM-1"))
    assert fault_code(r) == "6140"
    assert r.json()["Fault"]["Error"][0]["Detail"].endswith(f"TxnType=Credit Memo with TxnId={memo['Id']}")
    # batch: the include rides on the item's optionsData
    items = [{"bId": "1", "operation": "create", "Invoice": body(cust, item, DocNumber="A-1")},
             {"bId": "2", "operation": "create", "optionsData": "allowduplicatedocnum",
              "Invoice": body(cust, item, DocNumber="A-1")}]
    out = api.post("batch", {"BatchItemRequest": items}).json()["BatchItemResponse"]
    assert out[0]["Fault"]["Error"][0]["code"] == "6140" and out[1]["Invoice"]["DocNumber"] == "A-1"


def test_custom_numbers_off_qbo_assigns(qbo_sandbox, api, parts):
    qbo_sandbox.configure(api.realm, custom_txn_numbers="off")
    cust, item = parts
    a = api.create("Invoice", body(cust, item, DocNumber="MINE-7"))
    b = api.create("Invoice", body(cust, item))
    assert a["DocNumber"].isdigit() and int(b["DocNumber"]) == int(a["DocNumber"]) + 1
    r = api.post("invoice", {"Id": a["Id"], "SyncToken": "0", "sparse": True, "DocNumber": "MINE-8"})
    assert r.json()["Invoice"]["DocNumber"] == a["DocNumber"]


def test_default_is_lenient(api, parts):
    cust, item = parts
    assert api.create("Invoice", body(cust, item, DocNumber="X"))["DocNumber"] == "X"
    assert api.create("Invoice", body(cust, item, DocNumber="X"))["DocNumber"] == "X"
    assert api.create("Invoice", body(cust, item))["DocNumber"].isdigit()


def test_option_values_checked(qbo_sandbox, api):
    with pytest.raises(ValueError):
        qbo_sandbox.configure(api.realm, custom_txn_numbers="sometimes")
