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


def resolve_organizations(slug: str | None) -> list[Any]:
    """``--org SLUG`` or every organization; an unknown slug is a one-line error."""
    from django.apps import apps

    from qbo_sync.models.base import ORGANIZATION_MODEL

    model = apps.get_model(ORGANIZATION_MODEL)
    if slug is None:
        return list(model._default_manager.all())
    try:
        return [model._default_manager.get(slug=slug)]
    except model.DoesNotExist:
        raise CommandError(f"No organization with slug {slug!r}.") from None
