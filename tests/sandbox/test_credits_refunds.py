"""CreditMemo and RefundReceipt: credit applied to an invoice through a Payment, refunds as cash out."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.sandbox.conftest import fault_code


def iso(sb, delta_seconds=0.0) -> str:
    return datetime.fromtimestamp(sb.clock.time() + delta_seconds, UTC).isoformat()


def credit_memo(api, customer_id, item_id, amount):
    line = {"Amount": amount, "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item_id}}}
    return api.create("CreditMemo", {"CustomerRef": {"value": customer_id}, "Line": [line]})


def test_a_credit_memo_starts_with_its_whole_total_as_remaining_credit(api):
    c, i = api.customer(), api.item()
    memo = credit_memo(api, c["Id"], i["Id"], 40)
    assert memo["TotalAmt"] == 40.0 and memo["RemainingCredit"] == 40.0 and memo["Balance"] == 40.0
    assert memo["DocNumber"] and memo["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    assert api.read("Customer", c["Id"])["Balance"] == -40.0


def test_applying_a_credit_memo_lowers_the_invoice_balance_through_a_zero_payment(api, qbo_sandbox):
    c, i = api.customer(), api.item()
    inv = api.invoice(c["Id"], i["Id"], 100)
    memo = credit_memo(api, c["Id"], i["Id"], 30)
    since = iso(qbo_sandbox, -1)
    pay = api.create("Payment", {"CustomerRef": {"value": c["Id"]}, "TotalAmt": 0, "Line": [
        {"Amount": 30, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"},
                                     {"TxnId": inv["Id"], "TxnType": "Invoice"}]}]})
    assert pay["TotalAmt"] == 0.0 and pay["UnappliedAmt"] == 0.0
    invoice = api.read("Invoice", inv["Id"])
    assert invoice["Balance"] == 70.0 and invoice["LinkedTxn"] == [{"TxnId": pay["Id"], "TxnType": "Payment"}]
    assert invoice["SyncToken"] == "1"
    memo = api.read("CreditMemo", memo["Id"])
    assert memo["RemainingCredit"] == 0.0 and memo["Balance"] == 0.0 and memo["SyncToken"] == "1"
    assert api.read("Customer", c["Id"])["Balance"] == 70.0
    groups = api.get("cdc", entities="CreditMemo,Invoice,Payment", changedSince=since).json()
    groups = groups["CDCResponse"][0]["QueryResponse"]
    assert [g["CreditMemo"][0]["Id"] for g in groups[:1]] == [memo["Id"]]
    assert groups[1]["Invoice"][0]["Balance"] == 70.0
    # deleting the payment hands the credit back and reopens the invoice
    api.post("payment", {"Id": pay["Id"], "SyncToken": "0"}, operation="delete")
    assert api.read("Invoice", inv["Id"])["Balance"] == 100.0
    assert api.read("CreditMemo", memo["Id"])["RemainingCredit"] == 30.0


def test_cash_and_credit_on_one_payment_one_line_each(api):
    c, i = api.customer(), api.item()
    inv = api.invoice(c["Id"], i["Id"], 100)
    memo = credit_memo(api, c["Id"], i["Id"], 25)
    pay = api.create("Payment", {"CustomerRef": {"value": c["Id"]}, "TotalAmt": 75, "Line": [
        {"Amount": 100, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]},
        {"Amount": 25, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]}]})
    assert pay["UnappliedAmt"] == 0.0
    assert api.read("Invoice", inv["Id"])["Balance"] == 0.0
    assert api.read("CreditMemo", memo["Id"])["RemainingCredit"] == 0.0


def test_credit_beyond_what_is_left_or_of_another_customer_is_refused(api):
    c, other, i = api.customer(), api.customer("Other"), api.item()
    inv = api.invoice(c["Id"], i["Id"], 100)
    memo = credit_memo(api, c["Id"], i["Id"], 10)
    too_much = api.post("payment", {"CustomerRef": {"value": c["Id"]}, "TotalAmt": 0, "Line": [
        {"Amount": 20, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"},
                                     {"TxnId": inv["Id"], "TxnType": "Invoice"}]}]})
    assert too_much.status_code == 400 and "remaining credit" in too_much.text
    foreign = credit_memo(api, other["Id"], i["Id"], 10)
    r = api.post("payment", {"CustomerRef": {"value": c["Id"]}, "TotalAmt": 0, "Line": [
        {"Amount": 5, "LinkedTxn": [{"TxnId": foreign["Id"], "TxnType": "CreditMemo"},
                                    {"TxnId": inv["Id"], "TxnType": "Invoice"}]}]})
    assert r.status_code == 400 and "different customer" in r.text
    negative = api.post("payment", {"CustomerRef": {"value": c["Id"]}, "TotalAmt": 0, "Line": [
        {"Amount": -5, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}]})
    assert negative.status_code == 400 and fault_code(negative) == "2240"
    assert api.read("Invoice", inv["Id"])["Balance"] == 100.0


def test_a_credit_memo_in_use_cannot_be_deleted(api):
    c, i = api.customer(), api.item()
    inv = api.invoice(c["Id"], i["Id"], 100)
    memo = credit_memo(api, c["Id"], i["Id"], 10)
    api.create("Payment", {"CustomerRef": {"value": c["Id"]}, "TotalAmt": 0, "Line": [
        {"Amount": 10, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"},
                                     {"TxnId": inv["Id"], "TxnType": "Invoice"}]}]})
    r = api.post("creditmemo", {"Id": memo["Id"], "SyncToken": "1"}, operation="delete")
    assert r.status_code == 400 and "payments applied" in r.text


def test_a_refund_receipt_is_cash_out_and_touches_no_invoice(api, qbo_sandbox):
    c, i = api.customer(), api.item()
    inv = api.invoice(c["Id"], i["Id"], 100)
    missing = api.post("refundreceipt", {"CustomerRef": {"value": c["Id"]}, "Line": [
        {"Amount": 10, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": i["Id"]}}}]})
    assert missing.status_code == 400 and "DepositToAccountRef" in missing.text
    since = iso(qbo_sandbox, -1)
    refund = api.create("RefundReceipt", {"CustomerRef": {"value": c["Id"]}, "TotalAmt": 999,
                                          "DepositToAccountRef": {"value": "2"}, "Line": [
        {"Amount": 10, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": i["Id"]}}}]})
    assert refund["TotalAmt"] == 10.0 and refund["Balance"] == 0.0 and "LinkedTxn" not in refund
    assert api.read("Invoice", inv["Id"])["Balance"] == 100.0
    found = api.query(f"select * from RefundReceipt where CustomerRef = '{c['Id']}'").json()["QueryResponse"]
    assert [r["Id"] for r in found["RefundReceipt"]] == [refund["Id"]]
    cdc = api.get("cdc", entities="RefundReceipt", changedSince=since).json()["CDCResponse"][0]["QueryResponse"]
    assert cdc[0]["RefundReceipt"][0]["Id"] == refund["Id"]
