"""factory-boy factories for Batchly's domain (host data is made here, never loaded from fixture files)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from batchly.models import (
    Customer,
    Invoice,
    InvoiceLine,
    Item,
    Membership,
    Organization,
    SalesOrder,
    SalesOrderLine,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.django.Password("pw-for-tests-only")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.OPERATOR


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    organization = factory.SubFactory(OrganizationFactory)
    display_name = factory.Sequence(lambda n: f"Customer {n:05d}")
    company_name = factory.LazyAttribute(lambda c: f"{c.display_name} Ltd")
    given_name = "Ada"
    family_name = factory.Sequence(lambda n: f"Lovelace{n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    phone = "(555) 555-0100"
    bill_line1 = "1 Main Street"
    bill_city = "Springfield"
    bill_region = "CA"
    bill_postal_code = "94000"
    bill_country = "USA"


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Item {n:05d}")
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    description = "A thing we sell"
    unit_price = Decimal("12.50")
    type = Item.Type.SERVICE


class SalesOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SalesOrder

    organization = factory.SubFactory(OrganizationFactory)
    number = factory.Sequence(lambda n: f"SO-{n:05d}")
    customer = factory.SubFactory(CustomerFactory, organization=factory.SelfAttribute("..organization"))
    status = SalesOrder.Status.APPROVED
    delivery_date = factory.LazyFunction(lambda: dt.date.today() + dt.timedelta(days=7))


class SalesOrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SalesOrderLine

    order = factory.SubFactory(SalesOrderFactory)
    item = factory.SubFactory(ItemFactory, organization=factory.SelfAttribute("..order.organization"))
    description = "Line"
    quantity = Decimal("2")
    unit_price = Decimal("12.50")


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    number = factory.Sequence(lambda n: f"INV-{n + 1001}")
    customer = factory.SubFactory(CustomerFactory, organization=factory.SelfAttribute("..organization"))
    issue_date = factory.LazyFunction(dt.date.today)
    due_date = factory.LazyAttribute(lambda i: i.issue_date + dt.timedelta(days=30))

    @factory.post_generation
    def lines(self, create: bool, extracted: int | None, **kwargs: object) -> None:
        if not create:
            return
        for position in range(extracted if extracted is not None else 2):
            InvoiceLine.objects.create(
                invoice=self, item=ItemFactory(organization=self.organization), description=f"Line {position + 1}",
                quantity=Decimal("3"), unit_price=Decimal("10.25"), position=position,
            )
        self.recalculate()


class InvoiceLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InvoiceLine

    invoice = factory.SubFactory(InvoiceFactory, lines=0)
    item = factory.SubFactory(ItemFactory, organization=factory.SelfAttribute("..invoice.organization"))
    quantity = Decimal("1")
    unit_price = Decimal("9.99")
