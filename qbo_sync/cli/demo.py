from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from qbo_sync.cli import Subcommand


class Demo(Subcommand):
    name = "demo"
    help = "The main job: a full sync of a demo organization against the bundled QBO sandbox."

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        command.stdout.write(
            "Batchly and qbo_sync are installed and the database is migrated.\n"
            "The sync engine is not built yet, so there is nothing to sync; see README.md for what exists."
        )
