from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qbo_sync.cli import Subcommand, resolve_organizations


class Drain(Subcommand):
    name = "drain"
    help = "Process the sync queue now, in this process, until nothing is due or the time budget runs out."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                            help="Stop claiming work after this many seconds (default: DRAIN_BUDGET_SECONDS).")
        parser.add_argument("--org", metavar="ORG", help="Only this organization's items.")
        parser.add_argument("--json", action="store_true", help="Print the drain report as JSON.")

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.services.drain import ChunkReport, DrainReport, drain

        budget = options["budget"]
        if budget is not None and budget <= 0:
            raise CommandError("--budget must be a positive number of seconds.")
        org_id = resolve_organizations(options["org"])[0].pk if options["org"] else None
        as_json = options["json"]

        def progress(chunk: ChunkReport, report: DrainReport) -> None:
            if as_json:
                return
            detail = ", ".join(f"{k} {v}" for k, v in sorted(chunk.counts.items()) if v)
            command.stdout.write(f"chunk {report.chunks}: organization {chunk.organization_id}, {chunk.claimed} "
                                 f"item(s) in {chunk.seconds:.1f}s ({detail or 'nothing recorded'}); "
                                 f"total {report.claimed}")

        report = drain(budget_seconds=budget, organization_id=org_id, on_chunk=progress)
        if as_json:
            self.emit_json(command, report.as_dict())
            return
        command.stdout.write(
            f"Drained {report.claimed} item(s) in {report.chunks} chunk(s), {report.seconds:.1f}s: "
            f"{report.completed} completed, {report.retried} to retry, {report.failed} failed, {report.dead} dead, "
            f"{report.waiting} waiting. Stopped: {report.stopped}"
            + (" (due work remains)." if report.more_due else ".")
        )
