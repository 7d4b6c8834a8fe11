from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from qbo_sync.registry import validate_entity_name

#: The host's tenant model ("app_label.Model"), e.g. ``accounts.Organization``.
ORGANIZATION_MODEL: str = getattr(settings, "QBO_SYNC_ORGANIZATION_MODEL", "auth.Group")


#: The longest entity name the entity columns hold (system check ``qbo_sync.E018`` compares the registry with it).
ENTITY_NAME_MAX_LENGTH = 16


def entity_type_field(**kwargs: Any) -> models.CharField:
    """A column holding an entity name, checked against the entity registry (:mod:`qbo_sync.registry`) by a
    validator rather than by ``choices``: registering an entity needs no migration of qbo_sync."""
    kwargs.setdefault("max_length", ENTITY_NAME_MAX_LENGTH)
    return models.CharField(validators=[validate_entity_name], **kwargs)


def organization_fk(**kwargs: object) -> models.ForeignKey:
    kwargs.setdefault("on_delete", models.CASCADE)
    kwargs.setdefault("related_name", "+")
    return models.ForeignKey(ORGANIZATION_MODEL, **kwargs)  # type: ignore[arg-type]
