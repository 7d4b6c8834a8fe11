"""Batchly's domain signals, for integrations (like qbo_sync's adapters) to listen to."""

from django.dispatch import Signal

#: Sent after an invoice was voided; ``invoice`` is the voided invoice.
invoice_voided = Signal()
