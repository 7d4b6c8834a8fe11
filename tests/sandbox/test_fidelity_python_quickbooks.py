"""Fidelity check: the independent python-quickbooks + intuit-oauth libraries, unmodified, work against the
sandbox (OAuth code flow and refresh, customers, items, invoices incl. void, payments, queries, CDC, batch)."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests

pytest.importorskip("quickbooks")
pytest.importorskip("intuitlib")

from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from quickbooks import QuickBooks
from quickbooks.batch import batch_create, batch_delete
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import (
    AuthorizationException,
    ObjectNotFoundException,
    QuickbooksException,
)
from quickbooks.objects.account import Account
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment, PaymentLine

REDIRECT = "http://localhost:8000/qbo/callback"


@pytest.fixture(autouse=True)
def _plain_http(monkeypatch):
    # requests-oauthlib refuses http:// unless told otherwise (its documented switch for local servers)
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def connect(sb, realm_id: str) -> tuple[AuthClient, str]:
    """The real OAuth flow, driven by intuitlib against the sandbox's discovery document."""
    auth = AuthClient(client_id="app-id", client_secret="app-secret", redirect_uri=REDIRECT,
                      environment=f"{sb.base_url}/.well-known/openid_sandbox_configuration")
    url = auth.get_authorization_url([Scopes.ACCOUNTING]) + f"&realm_id={realm_id}"
    resp = requests.get(url, allow_redirects=False, timeout=5)
    back = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert back["state"][0] == auth.state_token
    auth.get_bearer_token(back["code"][0], realm_id=back["realmId"][0])
    return auth, back["realmId"][0]


def client(sb, auth: AuthClient, realm_id: str) -> QuickBooks:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qb = QuickBooks(auth_client=auth, refresh_token=auth.refresh_token, company_id=realm_id, minorversion=75)
    qb.api_url_v3 = f"{sb.base_url}/v3"  # production-style URL attribute, pointed at the sandbox
    return qb


@pytest.fixture
def qb(qbo_sandbox, qbo_realm):
    auth, realm = connect(qbo_sandbox, qbo_realm)
    assert realm == qbo_realm
    return client(qbo_sandbox, auth, realm)


def make_customer(qb, name: str) -> Customer:
    c = Customer()
    c.DisplayName = name
    c.GivenName = name.split()[0]
    return c.save(qb=qb)


def make_item(qb, name: str, price: str = "25") -> Item:
    it = Item()
    it.Name = name
    it.Type = "Service"
    it.UnitPrice = Decimal(price)
    it.IncomeAccountRef = Account.get(1, qb=qb).to_ref()
    return it.save(qb=qb)


def make_invoice(qb, customer: Customer, item: Item, amount, qty=None, price=None) -> Invoice:
    line = SalesItemLine()
    line.Amount = amount
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    if qty is not None:
        line.SalesItemLineDetail.Qty = qty
        line.SalesItemLineDetail.UnitPrice = price
    inv = Invoice()
    inv.CustomerRef = customer.to_ref()
    inv.Line.append(line)
    return inv.save(qb=qb)


def test_customers(qb):
    c = make_customer(qb, "Ada Lovelace")
    assert c.Id and c.SyncToken == "0"
    got = Customer.get(c.Id, qb=qb)
    assert got.DisplayName == "Ada Lovelace"
    got.CompanyName = "Analytical Engines"
    updated = got.save(qb=qb)  # a full update, sending back everything it read
    assert updated.SyncToken == "1" and updated.CompanyName == "Analytical Engines"
    with pytest.raises(QuickbooksException) as exc:
        make_customer(qb, "Ada Lovelace")
    assert exc.value.error_code == 6240
    got.GivenName = "Stale"
    with pytest.raises(QuickbooksException) as exc:
        got.save(qb=qb)  # SyncToken 0 is stale now
    assert exc.value.error_code == 5010


def test_items_and_queries(qb):
    make_item(qb, "Design", "75")
    make_item(qb, "Gardening")
    items = Item.all(qb=qb)  # SELECT *, Sku FROM Item ... MAXRESULTS 100
    assert sorted(i.Name for i in items) == ["Design", "Gardening"]
    make_customer(qb, "Amy's Bird Sanctuary")
    make_customer(qb, "Bill Windsurf")
    found = Customer.filter(DisplayName="Amy's Bird Sanctuary", qb=qb)
    assert len(found) == 1 and found[0].DisplayName == "Amy's Bird Sanctuary"
    assert Customer.count(qb=qb) == 2
    page = Customer.where("Active = true", order_by="DisplayName DESC", start_position=1, max_results=1, qb=qb)
    assert [c.DisplayName for c in page] == ["Bill Windsurf"]
    assert Customer.choose([found[0].Id], qb=qb)[0].Id == found[0].Id
    with pytest.raises(ObjectNotFoundException):
        Customer.get(999, qb=qb)


def test_invoices_with_void_and_payments(qb):
    cust = make_customer(qb, "Payer One")
    item = make_item(qb, "Lawn")
    inv = make_invoice(qb, cust, item, 100, qty=4, price=25)
    assert inv.TotalAmt == 100.0 and inv.Balance == 100.0 and inv.DocNumber
    pay = Payment()
    pay.TotalAmt = 60
    pay.CustomerRef = cust.to_ref()
    line = PaymentLine()
    line.Amount = 60
    line.LinkedTxn.append(inv.to_linked_txn())
    pay.Line.append(line)
    pay = pay.save(qb=qb)
    assert pay.Id and pay.UnappliedAmt == 0
    inv = Invoice.get(inv.Id, qb=qb)
    assert inv.Balance == 40.0 and inv.LinkedTxn[0].TxnId == pay.Id and inv.LinkedTxn[0].TxnType == "Payment"
    other = make_invoice(qb, cust, item, 30)
    other.void(qb=qb)
    voided = Invoice.get(other.Id, qb=qb)
    assert voided.TotalAmt == 0 and voided.Balance == 0 and voided.PrivateNote == "Voided"
    pay.void(qb=qb)  # python-quickbooks: operation=update&include=void
    assert Invoice.get(inv.Id, qb=qb).Balance == 100.0
    third = make_invoice(qb, cust, item, 5)
    third.delete(qb=qb)
    with pytest.raises(ObjectNotFoundException):
        Invoice.get(third.Id, qb=qb)


def test_cdc(qb, qbo_sandbox):
    since = datetime.fromtimestamp(qbo_sandbox.clock.time(), ZoneInfo("America/Los_Angeles")) - timedelta(seconds=2)
    cust = make_customer(qb, "Changed Lately")
    item = make_item(qb, "Thing")
    make_invoice(qb, cust, item, 12)
    resp = change_data_capture([Customer, Invoice], since.isoformat(timespec="seconds"), qb=qb)
    assert [c.DisplayName for c in resp.Customer] == ["Changed Lately"]
    assert [i.TotalAmt for i in resp.Invoice] == [12.0]


def test_batch(qb):
    a, b = Customer(), Customer()
    a.DisplayName, b.DisplayName = "Batch A", "Batch B"
    result = batch_create([a, b], qb=qb)
    assert len(result.successes) == 2 and not result.faults
    dup = Customer()
    dup.DisplayName = "Batch A"
    result = batch_create([dup], qb=qb)
    assert len(result.faults) == 1 and result.faults[0].Error[0].code == "6240"
    cust = make_customer(qb, "Batch Owner")
    item = make_item(qb, "Batch Item")
    invs = [make_invoice(qb, cust, item, n) for n in (1, 2)]
    result = batch_delete(invs, qb=qb)
    assert not result.faults
    assert Invoice.count(qb=qb) == 0


def test_refresh_through_intuitlib(qbo_sandbox, qbo_realm):
    auth, realm = connect(qbo_sandbox, qbo_realm)
    qbo_sandbox.expire_access_tokens(realm)
    qb = client(qbo_sandbox, auth, realm)
    with pytest.raises(AuthorizationException):
        Customer.all(qb=qb)
    # a fresh client refreshes on start (access_token None), as python-quickbooks does
    fresh = AuthClient(client_id="app-id", client_secret="app-secret", redirect_uri=REDIRECT,
                       environment=f"{qbo_sandbox.base_url}/.well-known/openid_configuration")
    fresh.refresh_token = auth.refresh_token
    qb2 = client(qbo_sandbox, fresh, realm)
    assert fresh.access_token and Customer.all(qb=qb2) == []
    fresh.revoke(token=fresh.refresh_token)
    with pytest.raises(AuthorizationException):
        Customer.all(qb=qb2)
