"""Batchly's domain: tenant scoping, invoice immutability and void, sales-order conversion, Decimal money."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser

from batchly.models import Customer, Invoice, InvoiceError, InvoiceLine, Item, SalesOrder
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    ItemFactory,
    MembershipFactory,
    OrganizationFactory,
    SalesOrderFactory,
    SalesOrderLineFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("model", "factory"),
    [(Customer, CustomerFactory), (Item, ItemFactory), (SalesOrder, SalesOrderFactory), (Invoice, InvoiceFactory)],
)
def test_every_domain_query_helper_is_tenant_scoped(model, factory) -> None:
    org_a, org_b = OrganizationFactory(), OrganizationFactory()
    mine = factory(organization=org_a)
    theirs = factory(organization=org_b)
    member = MembershipFactory(organization=org_a).user

    assert list(model.objects.for_organization(org_a)) == [mine]
    assert list(model.objects.for_organization(org_b.pk)) == [theirs]
    assert list(model.objects.for_user(member)) == [mine]
    assert list(model.objects.for_user(AnonymousUser())) == []
    assert list(model.objects.for_user(UserFactory(is_staff=True))) == []  # staff without membership sees nothing
    assert set(model.objects.for_user(UserFactory(is_superuser=True))) == {mine, theirs}


def test_a_user_in_two_organizations_sees_both_without_duplicates() -> None:
    user = UserFactory()
    a, b = MembershipFactory(user=user).organization, MembershipFactory(user=user).organization
    CustomerFactory(organization=a)
    CustomerFactory(organization=b)
    assert Customer.objects.for_user(user).count() == 2


def test_money_is_decimal_and_totals_round_to_cents() -> None:
    invoice = InvoiceFactory(lines=0)
    InvoiceLine.objects.create(invoice=invoice, item=ItemFactory(organization=invoice.organization),
                               quantity=Decimal("3"), unit_price=Decimal("0.3333"))
    InvoiceLine.objects.create(invoice=invoice, item=ItemFactory(organization=invoice.organization),
                               quantity=Decimal("1"), unit_price=Decimal("0.10"))
    invoice.recalculate()
    invoice.refresh_from_db()
    assert isinstance(invoice.total, Decimal)
    assert invoice.total == Decimal("1.10")  # 0.9999 -> 1.00, plus 0.10; never 1.0999999 as float would give
    assert invoice.amount_due == Decimal("1.10")


def test_converting_an_approved_sales_order_makes_an_invoice_with_its_lines() -> None:
    order = SalesOrderFactory()
    SalesOrderLineFactory(order=order, quantity=Decimal("2"), unit_price=Decimal("12.50"))
    SalesOrderLineFactory(order=order, quantity=Decimal("1"), unit_price=Decimal("5.00"))

    invoice = order.convert_to_invoice()

    assert invoice.customer_id == order.customer_id
    assert invoice.sales_order == order
    assert invoice.lines.count() == 2
    assert invoice.total == Decimal("30.00")
    assert invoice.status == Invoice.Status.DRAFT
    order.refresh_from_db()
    assert order.status == SalesOrder.Status.INVOICED


@pytest.mark.parametrize("status", [SalesOrder.Status.DRAFT, SalesOrder.Status.INVOICED])
def test_only_an_approved_sales_order_converts(status) -> None:
    order = SalesOrderFactory(status=status)
    with pytest.raises(InvoiceError, match="only an approved order"):
        order.convert_to_invoice()
    assert not Invoice.objects.exists()


def test_a_draft_invoice_can_be_edited() -> None:
    invoice = InvoiceFactory()
    invoice.memo = "Thanks!"
    invoice.save()
    invoice.lines.first().delete()
    invoice.recalculate()


def test_a_sent_invoice_refuses_edits_with_a_clear_error() -> None:
    invoice = InvoiceFactory()
    invoice.mark_sent()
    assert invoice.status == Invoice.Status.SENT and invoice.sent_at is not None

    invoice.memo = "changed"
    with pytest.raises(InvoiceError, match=r"cannot be edited \(changed: memo\).*Void it"):
        invoice.save()
    with pytest.raises(InvoiceError, match="its lines cannot change"):
        invoice.lines.first().delete()
    with pytest.raises(InvoiceError, match="its lines cannot change"):
        InvoiceLine.objects.create(invoice=invoice, item=ItemFactory(organization=invoice.organization),
                                   quantity=1, unit_price=1)
    with pytest.raises(InvoiceError, match="final"):
        invoice.recalculate()
    invoice.refresh_from_db()
    assert invoice.memo == ""


def test_payment_fields_stay_writable_on_a_sent_invoice() -> None:
    invoice = InvoiceFactory()
    invoice.mark_sent()
    invoice.amount_paid = Decimal("10.00")
    invoice.amount_due = invoice.total - Decimal("10.00")
    invoice.payment_status = Invoice.PaymentStatus.PARTIAL
    invoice.save(update_fields=["amount_paid", "amount_due", "payment_status", "updated_at"])
    invoice.refresh_from_db()
    assert invoice.payment_status == "partial"


def test_correction_is_void_plus_a_new_linked_invoice() -> None:
    invoice = InvoiceFactory()
    invoice.mark_sent()

    replacement = invoice.correct()

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID and invoice.voided_at is not None
    assert invoice.amount_due == Decimal("0.00")
    assert replacement.replaces == invoice
    assert replacement.status == Invoice.Status.DRAFT
    assert replacement.total == invoice.total
    assert replacement.number != invoice.number
    # A voided invoice cannot come back to life.
    invoice.status = Invoice.Status.SENT
    with pytest.raises(InvoiceError):
        invoice.save()


def test_void_sends_a_signal_for_integrations() -> None:
    from batchly.signals import invoice_voided

    seen = []
    invoice_voided.connect(lambda invoice, **kw: seen.append(invoice.pk), weak=False, dispatch_uid="t")
    try:
        invoice = InvoiceFactory()
        invoice.void()
        invoice.void()  # idempotent
    finally:
        invoice_voided.disconnect(dispatch_uid="t")
    assert seen == [invoice.pk]


def test_invoice_numbers_are_unique_per_organization_only() -> None:
    a = InvoiceFactory(number="INV-1")
    InvoiceFactory(number="INV-1")  # another organization: fine
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceFactory(number="INV-1", organization=a.organization)
