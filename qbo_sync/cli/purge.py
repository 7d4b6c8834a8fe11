from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qbo_sync.cli import Subcommand
from qbo_sync.exceptions import QboConfigurationError


class Purge(Subcommand):
    name = "purge"
    help = ("Delete finished jobs and queue items, sync log rows, webhook events and refused-delivery counts older "
            "than their retention (QBO_SYNC['RETENTION_DAYS']). Pending, failed and dead work is never deleted.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")
        parser.add_argument("--json", action="store_true", help="Print the counts as JSON.")

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.services.retention import purge

        try:
            report = purge(dry_run=options["dry_run"])
        except (ValueError, QboConfigurationError) as exc:  # a bad RETENTION_DAYS: one line, not a traceback
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.emit_json(command, report.as_dict())
            return
        verb = "Would delete" if report.dry_run else "Deleted"
        parts = [f"{count} {kind.replace('_', ' ')}" for kind, count in report.deleted.items()]
        command.stdout.write(f"{verb} {', '.join(parts) or 'nothing (every kind is kept forever)'}.")
