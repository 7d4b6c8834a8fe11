from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qbo_sync.cli import Subcommand, resolve_organizations
from qbo_sync.cli.progress import org_label


class Reconcile(Subcommand):
    name = "reconcile"
    help = ("Compare the host and QuickBooks for each connected organization: prints 'books match' or the drift "
            "list, each line with its one-step repair.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--org", metavar="ORG", help="Only this organization (default: every connected one).")
        parser.add_argument("--json", action="store_true", help="Print the reports as one JSON list.")
        parser.add_argument("--repair", action="store_true",
                            help="Apply each drift line's repair (queue pushes/pulls, relink); drain, then re-run.")

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.exceptions import QboApiError, QboSyncError
        from qbo_sync.models import QboConnection
        from qbo_sync.permissions import Actor
        from qbo_sync.services.operations import reconcile

        orgs = resolve_organizations(options["org"])
        connected = set(QboConnection.objects.filter(organization__in=orgs).exclude(
            status=QboConnection.Status.DISCONNECTED).values_list("organization_id", flat=True))
        if options["org"] and not connected:
            raise CommandError(f"Organization {options['org']!r} is not connected to QuickBooks.")
        reports = []
        for org in orgs:
            if org.pk not in connected:
                continue
            try:
                report = reconcile(Actor.system("cli"), org, repair=options["repair"])
            except (QboApiError, QboSyncError) as exc:
                raise CommandError(f"{org}: could not read QuickBooks: {exc}") from None
            reports.append((org, report))
        if options["json"]:
            self.emit_json(command, [dict(r.as_dict(), organization=org_label(o))
                                     for o, r in reports])
            return
        for org, report in reports:
            head = f"{org}: "
            flight = f" ({report.in_flight} item(s) still in the queue)" if report.in_flight else ""
            if report.books_match:
                command.stdout.write(f"{head}books match{flight}.")
            else:
                command.stdout.write(f"{head}{len(report.drift)} drift line(s){flight}:")
                for line in report.lines():
                    command.stdout.write(f"  {line}")
            for line in report.held:
                command.stdout.write(f"  {line}")
            for entity, counts in report.counts.items():
                command.stdout.write(f"  {entity}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
            for entity, totals in report.totals.items():
                command.stdout.write(f"  {entity} money: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
            for done in report.repaired:
                command.stdout.write(f"  repaired: {done}")
