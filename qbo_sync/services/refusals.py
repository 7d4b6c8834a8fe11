"""Counting refused requests: one counter row per (endpoint, reason, minute) instead of one row per request.

A flood of bad webhook posts (a wrong signature, an oversized body) must not grow the database by a row each. Each
refusal increments its minute's counter; the first refusal of a minute is also logged (the next ones only counted),
so the log stays readable under a flood too.
"""

from __future__ import annotations

import ipaddress
import logging

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from qbo_sync.models import RefusalCount

logger = logging.getLogger(__name__)


def count_refusal(endpoint: str, reason: str, message: str = "", address: str | None = None) -> int:
    """Count one refused request; returns the minute's count so far (1 = the first, which is logged)."""
    minute = timezone.now().replace(second=0, microsecond=0)
    message = message.replace("\x00", "")[:200]
    address = _address(address)
    key = {"endpoint": endpoint[:32], "reason": reason[:32], "minute": minute}
    rows = RefusalCount.objects.filter(**key)
    if rows.update(count=F("count") + 1, last_message=message, last_address=address):
        return rows.values_list("count", flat=True).first() or 0
    try:
        with transaction.atomic():
            RefusalCount.objects.create(**key, count=1, last_message=message, last_address=address)
    except IntegrityError:  # another process counted this minute's first refusal at the same moment
        rows.update(count=F("count") + 1, last_message=message, last_address=address)
        return 2
    logger.warning("%s refused a request (%s): %s (from %s); further refusals this minute are only counted",
                   endpoint, reason, message, address or "unknown address")
    return 1


def _address(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None
