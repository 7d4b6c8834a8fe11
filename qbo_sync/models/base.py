from __future__ import annotations

from django.conf import settings
from django.db import models

#: The host's tenant model ("app_label.Model"), e.g. ``accounts.Organization``.
ORGANIZATION_MODEL: str = getattr(settings, "QBO_SYNC_ORGANIZATION_MODEL", "auth.Group")


class EntityType(models.TextChoices):
    CUSTOMER = "Customer", "Customer"
    ITEM = "Item", "Item"
    INVOICE = "Invoice", "Invoice"
    PAYMENT = "Payment", "Payment"


def organization_fk(**kwargs: object) -> models.ForeignKey:
    kwargs.setdefault("on_delete", models.CASCADE)
    kwargs.setdefault("related_name", "+")
    return models.ForeignKey(ORGANIZATION_MODEL, **kwargs)  # type: ignore[arg-type]
