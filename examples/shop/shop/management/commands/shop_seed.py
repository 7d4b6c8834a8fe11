"""``manage.py shop_seed``: one store with a few customers, items and invoices; prints the store's id."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from shop.models import Customer, Invoice, InvoiceLine, Item, Store


class Command(BaseCommand):
    help = "Create a store with customers, items and invoices (the shop's sample data); print the store's id."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--invoices", type=int, default=6)

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        store = Store.objects.create(name="Corner Shop")
        customers = [Customer.objects.create(store=store, full_name=name, email=email) for name, email in (
            ("Ada Lovelace", "ada@example.com"), ("Grace Hopper", "grace@example.com"),
            ("Alan Turing", "alan@example.com"), ("Edsger Dijkstra", "edsger@example.com"))]
        items = [Item.objects.create(store=store, title=title, price=Decimal(price)) for title, price in (
            ("Espresso beans 1 kg", "24.50"), ("Grinder cleaning", "40.00"), ("Milk jug", "12.99"))]
        today = dt.date.today()
        for n in range(options["invoices"]):
            invoice = Invoice.objects.create(store=store, customer=customers[n % len(customers)],
                                             reference=f"SHOP-{1001 + n}", issued_on=today,
                                             due_on=today + dt.timedelta(days=30))
            for k in range(1 + n % 3):
                item = items[(n + k) % len(items)]
                InvoiceLine.objects.create(invoice=invoice, item=item, qty=Decimal(1 + k), price=item.price)
            invoice.balance = invoice.total
            invoice.save(update_fields=["balance"])
        self.stdout.write(str(store.pk))
