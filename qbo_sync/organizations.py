"""The host's tenant model and how people name one of its rows.

Every surface (the CLI's ``--org``, the API's ``org`` parameter and ``X-Organization`` header, the /qbo/ pages)
names an organization by one field, ``QBO_SYNC["ORGANIZATION_LOOKUP_FIELD"]`` (default ``"pk"``; a host with a
unique slug sets ``"slug"``). Nothing guesses between fields: a reference is that field's value or nothing.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models

from qbo_sync.conf import qbo_settings
from qbo_sync.exceptions import QboConfigurationError
from qbo_sync.models.base import ORGANIZATION_MODEL

#: Integers outside this range cannot be a primary key on any backend (PostgreSQL raises DataError).
MAX_INT = 2**63


def organization_model() -> type[models.Model]:
    return apps.get_model(ORGANIZATION_MODEL)


def lookup_field_name() -> str:
    return str(qbo_settings.ORGANIZATION_LOOKUP_FIELD or "pk")


def lookup_field(model: type[models.Model] | None = None) -> models.Field:
    """The model field named by ``ORGANIZATION_LOOKUP_FIELD`` (a configuration error if there is none)."""
    model = model or organization_model()
    name = lookup_field_name()
    if name == "pk":
        return model._meta.pk
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        field = None
    if not isinstance(field, models.Field):  # no such field, or a reverse relation (other rows, not a value)
        raise QboConfigurationError(
            f'QBO_SYNC["ORGANIZATION_LOOKUP_FIELD"] is {name!r}, but {model._meta.label} has no such field.'
        )
    return field


def organization_ref(org: Any) -> str:
    """How ``org`` is named on the command line, in URLs and in API answers."""
    name = lookup_field_name()
    value = org.pk if name == "pk" else getattr(org, name, None)
    return str(org.pk if value in (None, "") else value)


def find_organization(queryset: models.QuerySet, ref: Any) -> models.Model | None:
    """The row of ``queryset`` whose lookup field is ``ref``, or None (also for a value the field cannot hold)."""
    ref = str(ref or "").strip()
    if not ref or "\x00" in ref:
        return None
    field = lookup_field(queryset.model)
    try:
        value = field.to_python(ref)
    except (ValidationError, ValueError, TypeError):
        return None
    if isinstance(value, int) and not -MAX_INT < value < MAX_INT:
        return None
    max_length = getattr(field, "max_length", None)
    if max_length and len(str(value)) > max_length:
        return None
    return queryset.filter(**{field.attname if field.is_relation else field.name: value}).first()
