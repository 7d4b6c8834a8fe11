"""Subcommands of ``manage.py qbo_sync``. Each module defines one ``Subcommand``; all are thin callers of services."""

from __future__ import annotations

import argparse
import json
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError


class Subcommand:
    name: ClassVar[str]
    help: ClassVar[str]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        raise NotImplementedError

    @staticmethod
    def emit_json(command: BaseCommand, data: Any) -> None:
        command.stdout.write(json.dumps(data, default=str, sort_keys=True))


def resolve_organizations(ref: str | None) -> list[Any]:
    """``--org ORG`` (its ``ORGANIZATION_LOOKUP_FIELD`` value) or every organization; unknown is a one-line error."""
    from qbo_sync.exceptions import QboConfigurationError
    from qbo_sync.organizations import find_organization, lookup_field_name, organization_model

    manager = organization_model()._default_manager
    if ref is None:
        return list(manager.all())
    try:
        org = find_organization(manager.all(), ref)
    except QboConfigurationError as exc:
        raise CommandError(str(exc)) from None
    if org is None:
        raise CommandError(f"No organization with {lookup_field_name()} {ref!r}.")
    return [org]
