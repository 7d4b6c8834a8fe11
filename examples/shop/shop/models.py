"""A small shop's own models, shaped unlike Batchly's on purpose: the tenant is a Store (no slug), a customer has
a ``full_name``, an item a ``title`` and a ``price``, and an invoice keeps its own payment columns."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class Store(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="customers")
    full_name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    modified = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.full_name


class Item(models.Model):
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="items")
    title = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    modified = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title


class Invoice(models.Model):
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="invoices")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    reference = models.CharField(max_length=21)
    issued_on = models.DateField()
    due_on = models.DateField()
    cancelled = models.BooleanField(default=False)
    sent = models.BooleanField(default=False)
    # Written by qbo_sync from QuickBooks (the adapter's apply_payment_state).
    paid = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    payment_state = models.CharField(max_length=10, default="open")
    modified = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.reference

    @property
    def total(self) -> Decimal:
        return sum((line.qty * line.price for line in self.lines.all()), Decimal("0"))


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(Item, on_delete=models.PROTECT)
    qty = models.DecimalField(max_digits=10, decimal_places=2)
    price = models.DecimalField(max_digits=12, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.qty} x {self.item}"
