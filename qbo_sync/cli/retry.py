from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand

from qbo_sync.cli import Subcommand, resolve_organizations


class Retry(Subcommand):
    name = "retry"
    help = "Put failed queue items (and dead ones with --dead) back in the queue, due now with fresh attempts."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dead", action="store_true", help="Also retry dead items (out of attempts).")
        parser.add_argument("--org", metavar="ORG", help="Only this organization's items.")

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.models import QueueItem
        from qbo_sync.permissions import Actor
        from qbo_sync.services.operations import retry_items

        qs = QueueItem.objects.all()
        if options["org"]:
            qs = qs.filter(organization_id=resolve_organizations(options["org"])[0].pk)
        count = retry_items(Actor.system("cli"), qs, include_dead=options["dead"])
        kinds = "failed or dead" if options["dead"] else "failed"
        command.stdout.write(f"Requeued {count} {kinds} item(s).")
