from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qbo_sync.cli import Subcommand, resolve_organizations


class Pause(Subcommand):
    name = "pause"
    help = ("Pause an organization's sync (e.g. during the accountant's month-end close): changes keep queueing, "
            "nothing is sent to or pulled from QuickBooks until `qbo_sync resume`.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--org", required=True, metavar="ORG", help="The organization to pause.")
        parser.add_argument("--reason", required=True, help="Why (shown on every progress page and in status).")

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.permissions import Actor
        from qbo_sync.services.jobs import QboInputError
        from qbo_sync.services.operations import pause

        org = resolve_organizations(options["org"])[0]
        try:
            pause(Actor.system("cli"), org, options["reason"])
        except QboInputError as exc:
            raise CommandError(str(exc)) from None
        command.stdout.write(f"Paused {org}: changes keep queueing; nothing is sent or pulled until resumed.")


class Resume(Subcommand):
    name = "resume"
    help = "Resume a paused organization's sync: the work that waited is due at once."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--org", required=True, metavar="ORG", help="The organization to resume.")

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.permissions import Actor
        from qbo_sync.services.jobs import QboInputError
        from qbo_sync.services.operations import resume

        org = resolve_organizations(options["org"])[0]
        try:
            resume(Actor.system("cli"), org)
        except QboInputError as exc:
            raise CommandError(str(exc)) from None
        command.stdout.write(f"Resumed {org}.")
