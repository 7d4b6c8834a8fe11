import datetime as dt
from decimal import Decimal

import pytest

from qbo_sync.mapping import payments
from qbo_sync.mapping.base import Direction, DirectionError, MappingError

from .conftest import query_invoice

BEFORE_DUE = dt.date(2020, 3, 10)  # invoice 67 is due 2020-03-17


def payment(pid, invoice_id, txn_date, amount, updated="2020-03-08T13:39:32-07:00"):
    return {
        "Payment": {
            "Id": pid,
            "TxnDate": txn_date,
            "TotalAmt": amount,
            "CustomerRef": {"value": "1"},
            "MetaData": {"CreateTime": updated, "LastUpdatedTime": updated},
            "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}],
        }
    }


def test_spec_is_pull_only_and_never_pushed():
    assert payments.SPEC.direction is Direction.PULL
    assert payments.SPEC.qbo_owned_fields == set(payments.SPEC.fields)
    with pytest.raises(DirectionError):
        payments.to_qbo({"amount_paid": Decimal("1")})


def test_partial_payment_amounts_from_the_sample():
    state = payments.payment_state(query_invoice("67"), None, BEFORE_DUE)
    assert state == {
        "amount_paid": Decimal("220.00"),  # 459 - 239
        "amount_credited": Decimal("0.00"),
        "amount_refunded": Decimal("0.00"),
        "amount_due": Decimal("239.00"),
        "payment_status": "partial",
        "last_payment_date": None,
        "last_payment_id": "101",
        "tax_amount": Decimal("34.00"),  # what QBO charged (TxnTaxDetail.TotalTax), included in TotalAmt
        "total": Decimal("459.00"),
    }


def test_partial_stays_partial_past_due_but_is_flagged_late():
    late = dt.date(2020, 4, 1)
    assert payments.payment_state(query_invoice("67"), None, late)["payment_status"] == "partial"
    assert payments.is_past_due(query_invoice("67"), late)
    assert not payments.is_past_due(query_invoice("67"), BEFORE_DUE)


def test_paid(payload):
    state = payments.payment_state(payload("invoice_paid_response.json"), None, dt.date(2030, 1, 1))
    assert state["payment_status"] == "paid"
    assert state["amount_paid"] == Decimal("108.00")
    assert state["amount_due"] == Decimal("0.00")
    assert state["last_payment_id"] == "31"


def test_open_and_overdue(payload):
    invoice = payload("invoice_read_open_response.json")  # due 2020-10-29, balance 100
    assert payments.payment_state(invoice, [], dt.date(2020, 10, 29))["payment_status"] == "open"
    overdue = payments.payment_state(invoice, [], dt.date(2020, 10, 30))
    assert overdue["payment_status"] == "overdue"
    assert overdue["amount_due"] == Decimal("100.00")
    assert overdue["amount_paid"] == Decimal("0.00")
    assert overdue["last_payment_id"] is None


def test_voided_invoice_is_void_with_nothing_paid_or_due(payload):
    state = payments.payment_state(payload("invoice_void_response.json"), [], dt.date(2030, 1, 1))
    assert state == {
        "amount_paid": Decimal("0.00"),
        "amount_credited": Decimal("0.00"),
        "amount_refunded": Decimal("0.00"),
        "amount_due": Decimal("0.00"),
        "payment_status": "void",
        "last_payment_date": None,
        "last_payment_id": None,
    }


def test_zero_total_not_voided_is_open():
    invoice = {"Id": "5", "TotalAmt": 0, "Balance": 0, "DueDate": "2020-01-01"}
    assert payments.payment_state(invoice, None, dt.date(2030, 1, 1))["payment_status"] == "open"


def test_last_payment_is_the_latest_txn_date_among_linked_payments():
    invoice = query_invoice("71")  # LinkedTxn lists 74 then 72
    linked = [
        payment("74", "71", "2020-01-25", 100, updated="2020-03-08T12:51:28-07:00"),
        payment("72", "71", "2020-02-01", 105, updated="2020-03-08T12:50:00-07:00"),
        payment("99", "9", "2020-03-01", 5),  # applied to another invoice: ignored
    ]
    state = payments.payment_state(invoice, linked, dt.date(2020, 3, 10))
    assert state["payment_status"] == "paid"
    assert state["last_payment_date"] == dt.date(2020, 2, 1)
    assert state["last_payment_id"] == "72"


def test_fallback_is_the_highest_linked_payment_id():
    assert payments.payment_state(query_invoice("71"), None, dt.date(2020, 3, 10))["last_payment_id"] == "74"


def test_same_date_tie_broken_by_last_update_then_id():
    invoice = query_invoice("71")
    linked = [
        payment("72", "71", "2020-02-01", 105, updated="2020-03-08T12:55:00-07:00"),
        payment("74", "71", "2020-02-01", 100, updated="2020-03-08T12:51:28-07:00"),
    ]
    assert payments.payment_state(invoice, linked, dt.date(2020, 3, 10))["last_payment_id"] == "72"


def test_real_payment_payload(payload):
    raw = payload("payment_response.json")
    values = payments.from_qbo(raw)
    assert values == {
        "qbo_id": "125",
        "txn_date": dt.date(2014, 9, 14),
        "total_amount": Decimal("25.00"),
        "unapplied_amount": Decimal("0.00"),
        "customer_qbo_id": "20",
        "applied": {"67": Decimal("25.00")},
        "credits_used": {},
        "credited": {},
    }
    assert payments.linked_invoice_ids(raw) == ["67"]
    assert payments.qbo_updated_at(raw) == dt.datetime(2014, 9, 16, 21, 59, 48, tzinfo=dt.UTC)
    invoice = query_invoice("67")
    invoice["LinkedTxn"] = [{"TxnId": "125", "TxnType": "Payment"}]
    state = payments.payment_state(invoice, [raw], BEFORE_DUE)
    assert (state["last_payment_id"], state["last_payment_date"]) == ("125", dt.date(2014, 9, 14))


def test_money_is_never_float():
    state = payments.payment_state(query_invoice("67"), None, BEFORE_DUE)
    assert isinstance(state["amount_paid"], Decimal) and isinstance(state["amount_due"], Decimal)


def test_refusals():
    with pytest.raises(MappingError, match="today"):
        payments.payment_state(query_invoice("67"), None, None)
    with pytest.raises(MappingError, match="deleted"):
        payments.payment_state({"Invoice": {"Id": "266", "status": "Deleted"}}, None, BEFORE_DUE)


# --- credits and refunds ----------------------------------------------------------------------------------------------


def invoice(iid, total, balance, txn_date="2026-11-01", customer="1", payments_ids=()):
    return {"Invoice": {"Id": iid, "TotalAmt": total, "Balance": balance, "TxnDate": txn_date, "DueDate": "2026-12-01",
                        "CustomerRef": {"value": customer},
                        "LinkedTxn": [{"TxnId": p, "TxnType": "Payment"} for p in payments_ids]}}


def credit_application(pid, memo_id, invoice_id, amount, *, shape="one_line"):
    if shape == "one_line":
        lines = [{"Amount": amount, "LinkedTxn": [{"TxnId": memo_id, "TxnType": "CreditMemo"},
                                                  {"TxnId": invoice_id, "TxnType": "Invoice"}]}]
    else:
        lines = [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]},
                 {"Amount": amount, "LinkedTxn": [{"TxnId": memo_id, "TxnType": "CreditMemo"}]}]
    return {"Id": pid, "TotalAmt": 0, "TxnDate": "2026-11-05", "CustomerRef": {"value": "1"}, "Line": lines}


TODAY = dt.date(2026, 11, 10)


@pytest.mark.parametrize("shape", ["one_line", "line_each"])
def test_a_fully_credited_invoice_is_credited_not_paid(shape):
    state = payments.payment_state(invoice("5", 100, 0, payments_ids=["9"]),
                                   [credit_application("9", "3", "5", 100, shape=shape)], TODAY)
    assert state["payment_status"] == "credited"
    assert state["amount_credited"] == Decimal("100.00") and state["amount_paid"] == Decimal("0.00")


def test_cash_and_credit_are_told_apart():
    cash = payment("8", "5", "2026-11-04", 60)["Payment"]
    combined = {"Id": "9", "TotalAmt": 10, "TxnDate": "2026-11-05", "CustomerRef": {"value": "1"},
                "Line": [{"Amount": 40, "LinkedTxn": [{"TxnId": "5", "TxnType": "Invoice"}]},
                         {"Amount": 30, "LinkedTxn": [{"TxnId": "3", "TxnType": "CreditMemo"}]}]}
    state = payments.payment_state(invoice("5", 100, 0, payments_ids=["8", "9"]), [cash, combined], TODAY)
    assert state["payment_status"] == "paid"
    assert (state["amount_paid"], state["amount_credited"]) == (Decimal("70.00"), Decimal("30.00"))
    half = payments.payment_state(invoice("5", 100, 50, payments_ids=["9"]),
                                  [credit_application("9", "3", "5", 50)], TODAY)
    assert half["payment_status"] == "partial" and half["amount_credited"] == Decimal("50.00")
    assert half["amount_paid"] == Decimal("0.00") and half["amount_due"] == Decimal("50.00")


def test_pooled_credit_goes_to_the_payments_invoices_in_order():
    both = {"Id": "9", "TotalAmt": 0, "CustomerRef": {"value": "1"}, "Line": [
        {"Amount": 30, "LinkedTxn": [{"TxnId": "5", "TxnType": "Invoice"}]},
        {"Amount": 20, "LinkedTxn": [{"TxnId": "6", "TxnType": "Invoice"}]},
        {"Amount": 50, "LinkedTxn": [{"TxnId": "3", "TxnType": "CreditMemo"}]}]}
    assert payments.from_qbo(both)["credited"] == {"5": Decimal("30.00"), "6": Decimal("20.00")}
    assert payments.from_qbo(both)["credits_used"] == {"3": Decimal("50.00")}


def test_refunds_go_to_the_newest_paid_invoices_of_the_customer():
    older = invoice("5", 100, 0, "2026-10-01", payments_ids=["8"])
    newer = invoice("6", 50, 0, "2026-11-01", payments_ids=["9"])
    credited = invoice("7", 80, 0, "2026-11-02", payments_ids=["10"])
    other = invoice("11", 500, 0, "2026-11-03", customer="2")
    pays = [payment("8", "5", "2026-10-02", 100)["Payment"], payment("9", "6", "2026-11-02", 50)["Payment"],
            credit_application("10", "3", "7", 80)]
    refunds = [{"RefundReceipt": {"Id": "1", "TotalAmt": 70, "CustomerRef": {"value": "1"}}},
               {"Id": "2", "status": "Deleted"}, {"Id": "3", "TotalAmt": 5}]
    got = payments.refunds_by_invoice([older, newer, credited, other], pays, refunds)
    assert got == {"6": Decimal("50.00"), "5": Decimal("20.00")}
    state = payments.payment_state(newer, pays, TODAY, refunded=got["6"])
    assert state["payment_status"] == "refunded" and state["amount_refunded"] == Decimal("50.00")
    part = payments.payment_state(older, pays, TODAY, refunded=got["5"])
    assert part["payment_status"] == "paid" and part["amount_refunded"] == Decimal("20.00")
    assert part["amount_paid"] == Decimal("100.00")


def test_a_void_shows_nothing_credited_or_refunded():
    void = {"Id": "5", "TotalAmt": 0, "Balance": 0, "PrivateNote": "Voided", "Line": []}
    state = payments.payment_state(void, [credit_application("9", "3", "5", 10)], TODAY, refunded=Decimal("5"))
    assert state["payment_status"] == "void"
    assert state["amount_credited"] == state["amount_refunded"] == Decimal("0.00")


def test_a_void_carries_no_tax_or_total(payload):
    state = payments.payment_state(payload("invoice_void_response.json"), [], dt.date(2030, 1, 1))
    assert "tax_amount" not in state and "total" not in state  # the host keeps what it billed
