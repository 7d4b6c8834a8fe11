from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qbo_sync.cli import Subcommand


class Schedules(Subcommand):
    name = "schedules"
    help = "Install, list or remove qbo_sync's django-q2 schedules (nightly pulls and the minute drain)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", nargs="?", choices=["install", "list", "remove"], default="list")
        parser.add_argument("--json", action="store_true", help="Print the schedules as JSON.")

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.services import schedules

        action = options["action"]
        if action == "install":
            try:
                installed = schedules.install_schedules()
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            if not options["json"]:
                command.stdout.write(f"Installed {len(installed)} schedule(s).")
        elif action == "remove":
            count = schedules.remove_schedules()
            if options["json"]:
                self.emit_json(command, {"removed": count})
            else:
                command.stdout.write(f"Removed {count} schedule(s).")
            return
        rows = schedules.list_schedules()
        if options["json"]:
            self.emit_json(command, rows)
            return
        if not rows:
            command.stdout.write("No qbo_sync schedules installed (run `qbo_sync schedules install`).")
        for row in rows:
            every = f"every {row['minutes']} min" if row["minutes"] else row["type"].lower()
            command.stdout.write(f"{row['name']:<28} {row['func']}{'(' + row['args'] + ')' if row['args'] else ''}"
                                 f"  {every}, next {row['next_run_local']}")
