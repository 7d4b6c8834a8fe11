"""Finding 1 (issue 12), the host's part: Batchly's admin keeps every write inside the user's organizations.

A member of organization A with every permission on Batchly's business models (an attacker holding a member's
login) tries each cross-tenant write the review found, and some it did not: create a row in B, move a row of A into
B, point a row of A at B's rows (an invoice's customer, a line's item, a sales order's customer and its lines'
items). Each is refused with a form error and nothing is stored. A member of both organizations and a superuser, who
may pick from both, still cannot mix them in one invoice (the models' ``clean``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from batchly.models import Customer, Invoice, InvoiceLine, Item, Membership, Organization, SalesOrder, SalesOrderLine
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    ItemFactory,
    MembershipFactory,
    OrganizationFactory,
    SalesOrderFactory,
    UserFactory,
)

BUSINESS_MODELS = ("customer", "item", "invoice", "invoiceline", "salesorder", "salesorderline")


@pytest.fixture
def orgs(db):
    a = OrganizationFactory(name="Org A", slug="org-a")
    b = OrganizationFactory(name="Org B", slug="org-b")
    return a, b


@pytest.fixture
def b_rows(orgs):
    _, b = orgs
    return {"customer": CustomerFactory(organization=b, display_name="B Secret Customer"),
            "item": ItemFactory(organization=b, name="B Secret Item")}


@pytest.fixture
def a_rows(orgs):
    a, _ = orgs
    return {"customer": CustomerFactory(organization=a, display_name="A Customer", email="a@example.com"),
            "item": ItemFactory(organization=a, name="A Item")}


def member_client(*organizations, username="mallory", superuser=False) -> Client:
    user = UserFactory(username=username, is_superuser=superuser)
    for organization in organizations:
        MembershipFactory(user=user, organization=organization)
    for model in BUSINESS_MODELS:
        for action in ("add", "change", "view", "delete"):
            user.user_permissions.add(Permission.objects.get(content_type__app_label="batchly",
                                                             codename=f"{action}_{model}"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def mallory(orgs) -> Client:
    return member_client(orgs[0])


def inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{key}": value for key, value in row.items()})
    return data


def customer_form(org, **extra) -> dict:
    return {"organization": org.pk, "display_name": "Planted", "email": "attacker@example.com", "active": "on",
            **extra}


def invoice_form(org, customer, items=(), number="INV-9001") -> dict:
    today = dt.date.today()
    lines = [{"item": item.pk, "description": "x", "quantity": "1", "unit_price": "5", "position": str(i)}
             for i, item in enumerate(items)]
    return {"organization": org.pk, "number": number, "customer": customer.pk, "issue_date": today.isoformat(),
            "due_date": (today + dt.timedelta(days=30)).isoformat(), "memo": "", "subtotal": "0", "total": "0",
            **inline("lines", lines)}


def order_form(org, customer, items=(), number="SO-9001") -> dict:
    lines = [{"item": item.pk, "description": "x", "quantity": "1", "unit_price": "5", "position": str(i)}
             for i, item in enumerate(items)]
    return {"organization": org.pk, "number": number, "customer": customer.pk, "status": "draft",
            "delivery_date": "", **inline("lines", lines)}


def refused(response) -> bool:
    """The admin answered with the form again (errors shown) or refused outright; it did not save and redirect."""
    return response.status_code in (200, 403, 404) and response.status_code != 302


# --- creating in another organization -----------------------------------------------------------------------------


def test_customer_created_in_another_organization_is_refused(mallory, orgs):
    _, b = orgs
    response = mallory.post("/admin/batchly/customer/add/", customer_form(b))
    assert refused(response)
    assert response.status_code == 200 and "organization" in response.context["adminform"].form.errors
    assert not Customer.objects.filter(organization=b).exists()


def test_item_created_in_another_organization_is_refused(mallory, orgs):
    _, b = orgs
    response = mallory.post("/admin/batchly/item/add/", {"organization": b.pk, "name": "Planted", "sku": "",
                                                         "description": "", "unit_price": "1", "type": "Service",
                                                         "active": "on"})
    assert refused(response)
    assert not Item.objects.filter(organization=b).exists()


def test_invoice_and_order_created_in_another_organization_are_refused(mallory, orgs, b_rows):
    _, b = orgs
    assert refused(mallory.post("/admin/batchly/invoice/add/", invoice_form(b, b_rows["customer"])))
    assert refused(mallory.post("/admin/batchly/salesorder/add/", order_form(b, b_rows["customer"])))
    assert not Invoice.objects.exists() and not SalesOrder.objects.exists()


# --- moving a row into another organization -----------------------------------------------------------------------


def test_customer_is_not_moved_into_another_organization(mallory, orgs, a_rows):
    a, b = orgs
    customer = a_rows["customer"]
    response = mallory.post(f"/admin/batchly/customer/{customer.pk}/change/",
                            customer_form(b, display_name="A Customer"))
    customer.refresh_from_db()
    assert customer.organization_id == a.pk  # organization is read-only on an existing row: the post is ignored
    assert response.status_code in (200, 302)


def test_invoice_is_not_moved_into_another_organization(mallory, orgs, a_rows, b_rows):
    a, b = orgs
    invoice = InvoiceFactory(organization=a, customer=a_rows["customer"], lines=0)
    mallory.post(f"/admin/batchly/invoice/{invoice.pk}/change/",
                 invoice_form(b, b_rows["customer"], number=invoice.number))
    invoice.refresh_from_db()
    assert (invoice.organization_id, invoice.customer_id) == (a.pk, a_rows["customer"].pk)


# --- pointing a row of A at B's rows ------------------------------------------------------------------------------


def test_invoice_pointing_at_another_organizations_customer_is_refused(mallory, orgs, a_rows, b_rows):
    a, _ = orgs
    invoice = InvoiceFactory(organization=a, customer=a_rows["customer"], lines=0)
    response = mallory.post(f"/admin/batchly/invoice/{invoice.pk}/change/",
                            invoice_form(a, b_rows["customer"], number=invoice.number))
    assert response.status_code == 200
    assert "customer" in response.context["adminform"].form.errors
    invoice.refresh_from_db()
    assert invoice.customer_id == a_rows["customer"].pk
    response = mallory.post("/admin/batchly/invoice/add/", invoice_form(a, b_rows["customer"]))
    assert response.status_code == 200 and not Invoice.objects.filter(number="INV-9001").exists()


def test_invoice_line_with_another_organizations_item_is_refused(mallory, orgs, a_rows, b_rows):
    a, _ = orgs
    response = mallory.post("/admin/batchly/invoice/add/",
                            invoice_form(a, a_rows["customer"], items=[a_rows["item"], b_rows["item"]]))
    assert response.status_code == 200
    assert not Invoice.objects.exists() and not InvoiceLine.objects.exists()
    invoice = InvoiceFactory(organization=a, customer=a_rows["customer"], lines=0)
    mallory.post(f"/admin/batchly/invoice/{invoice.pk}/change/",
                 invoice_form(a, a_rows["customer"], items=[b_rows["item"]], number=invoice.number))
    assert not InvoiceLine.objects.filter(item=b_rows["item"]).exists()


def test_sales_order_pointing_at_another_organizations_rows_is_refused(mallory, orgs, a_rows, b_rows):
    a, _ = orgs
    assert mallory.post("/admin/batchly/salesorder/add/", order_form(a, b_rows["customer"])).status_code == 200
    assert mallory.post("/admin/batchly/salesorder/add/",
                        order_form(a, a_rows["customer"], items=[b_rows["item"]])).status_code == 200
    assert not SalesOrder.objects.exists() and not SalesOrderLine.objects.exists()
    order = SalesOrderFactory(organization=a, customer=a_rows["customer"], status="draft")
    mallory.post(f"/admin/batchly/salesorder/{order.pk}/change/",
                 order_form(a, b_rows["customer"], number=order.number))
    order.refresh_from_db()
    assert order.customer_id == a_rows["customer"].pk


def test_the_forms_offer_no_choice_of_another_organization(mallory, orgs, a_rows, b_rows):
    for url in ("/admin/batchly/invoice/add/", "/admin/batchly/salesorder/add/", "/admin/batchly/customer/add/"):
        page = mallory.get(url).content.decode()
        assert "Org A" in page
        assert "Org B" not in page and "B Secret Customer" not in page and "B Secret Item" not in page, url


def test_legitimate_writes_still_work(mallory, orgs, a_rows):
    a, _ = orgs
    assert mallory.post("/admin/batchly/customer/add/", customer_form(a)).status_code == 302
    response = mallory.post("/admin/batchly/invoice/add/", invoice_form(a, a_rows["customer"], items=[a_rows["item"]]))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert Invoice.objects.get(number="INV-9001").lines.get().item_id == a_rows["item"].pk


# --- who may pick from both organizations still cannot mix them ---------------------------------------------------


@pytest.mark.parametrize("superuser", [False, True], ids=["member-of-both", "superuser"])
def test_one_invoice_never_mixes_two_organizations(orgs, a_rows, b_rows, superuser):
    a, b = orgs
    client = member_client(a, b, username="both", superuser=superuser)
    response = client.post("/admin/batchly/invoice/add/", invoice_form(a, b_rows["customer"]))
    assert response.status_code == 200 and "customer" in response.context["adminform"].form.errors
    response = client.post("/admin/batchly/invoice/add/", invoice_form(a, a_rows["customer"], items=[b_rows["item"]]))
    assert response.status_code == 200
    response = client.post("/admin/batchly/salesorder/add/", order_form(a, a_rows["customer"], items=[b_rows["item"]]))
    assert response.status_code == 200
    assert not Invoice.objects.exists() and not SalesOrder.objects.exists()


# --- organizations and memberships --------------------------------------------------------------------------------


def test_organizations_and_memberships_of_others_are_invisible_and_not_writable(orgs):
    a, b = orgs
    user = UserFactory(username="owner")
    MembershipFactory(user=user, organization=a, role=Membership.Role.OWNER)
    for model in ("organization", "membership"):
        for action in ("add", "change", "view", "delete"):
            user.user_permissions.add(Permission.objects.get(content_type__app_label="batchly",
                                                             codename=f"{action}_{model}"))
    client = Client()
    client.force_login(user)
    page = client.get("/admin/batchly/organization/").content.decode()
    assert "Org A" in page and "Org B" not in page
    assert client.get(f"/admin/batchly/organization/{b.pk}/change/").status_code == 302  # "does not exist"
    assert client.post("/admin/batchly/organization/add/", {"name": "New", "slug": "new"}).status_code == 403
    response = client.post("/admin/batchly/membership/add/", {"user": user.pk, "organization": b.pk,
                                                              "role": "owner"})
    assert response.status_code == 403
    assert not Membership.objects.filter(user=user, organization=b).exists()
    assert Organization.objects.count() == 2
