"""``qbo_sync status``: per organization the connection, queue, conflicts and last runs; then the schedules."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from qbo_sync.cli import Subcommand, resolve_organizations
from qbo_sync.cli.progress import add_json_argument, org_label

QUEUE_ORDER = ("pending", "processing", "completed", "failed", "dead", "cancelled")


def advice(slug: str, connection: dict[str, Any]) -> str:
    """What a person should do about the connection, or "" when nothing."""
    status = connection["status"]
    if status == "needs_reauth":
        return (f"QuickBooks needs re-authorisation: run `manage.py qbo_sync connect --org {slug}` (or Reconnect in "
                "the admin); queued work resumes once connected.")
    if status == "disconnected":
        return f"Not connected: run `manage.py qbo_sync connect --org {slug}` to connect a QuickBooks company."
    return ""


def _when(value: Any) -> str:
    if value is None:
        return "never"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")


def last_runs(overview: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per entity: its last job of each kind and its pull cursor."""
    runs: dict[str, dict[str, Any]] = {}
    for key, job in overview["last_jobs"].items():
        kind, _, entity = key.partition(":")
        runs.setdefault(entity or "(all)", {})[kind] = job
    for entity, cursor in overview["pulls"].items():
        runs.setdefault(entity, {})["cursor"] = cursor
    return dict(sorted(runs.items()))


class Status(Subcommand):
    name = "status"
    help = ("Show, per organization, the QuickBooks connection (status, company, realm, token expiry, last error "
            "and what to do), the queue by status, conflicts, the last runs per entity; then the schedules.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--org", metavar="ORG", help="Only this organization (default: every one).")
        add_json_argument(parser)

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.services.schedules import list_schedules
        from qbo_sync.services.status import organization_overview

        reports = []
        for org in resolve_organizations(options["org"]):
            overview = organization_overview(org.pk)
            slug = org_label(org)
            overview["connection"]["action"] = advice(slug, overview["connection"])
            reports.append({"organization": slug, "name": str(org), **overview, "last_runs": last_runs(overview)})
        schedules = list_schedules()
        if options["json"]:
            self.emit_json(command, {"organizations": reports, "schedules": schedules})
            return
        if not reports:
            command.stdout.write("No organizations.")
        for report in reports:
            self.write_org(command, report)
        if schedules:
            command.stdout.write("Schedules:")
            for row in schedules:
                every = f"every {row['minutes']} min" if row["minutes"] else row["type"].lower()
                command.stdout.write(f"  {row['name']:<28} {every}, next {row['next_run_local']}")
        else:
            command.stdout.write("Schedules: none installed (run `qbo_sync schedules install`).")

    @staticmethod
    def write_org(command: BaseCommand, report: dict[str, Any]) -> None:
        conn = report["connection"]
        write = command.stdout.write
        write(f"{report['name']} ({report['organization']})")
        if conn["status"] == "disconnected" and not conn["realm_id"]:
            write("  connection: not connected")
        else:
            company = conn["company_name"] or "(company name unknown)"
            write(f"  connection: {conn['status']}, {company}, realm {conn['realm_id'] or '-'} "
                  f"({conn['environment'] or '-'}), access token expires {_when(conn['access_token_expires_at'])}")
        if conn.get("paused"):
            write(f"  PAUSED since {_when(conn['paused_at'])}: {conn['pause_reason']} "
                  f"(work queues; nothing is sent or pulled until `qbo_sync resume`)")
        if conn["last_error"]:
            write(f"  last error: {' '.join(conn['last_error'].split())}")
        if conn["action"]:
            write(f"  to do: {conn['action']}")
        queue = report["queue"]
        counts = ", ".join(f"{s} {queue.get(s, 0)}" for s in QUEUE_ORDER if s in queue)
        due = f"; {queue['due']} due now" + (f", oldest waiting {queue['oldest_due_seconds']}s"
                                               if queue.get("oldest_due_seconds") is not None else "")
        write(f"  queue: {counts}{due if queue.get('due') else ''}")
        c = report["conflicts"]
        write(f"  conflicts: {c['open']} open, {c['auto_resolved']} auto-resolved, {c['resolved']} resolved")
        if not report["last_runs"]:
            write("  last runs: none")
        for entity, runs in report["last_runs"].items():
            parts = []
            for kind in ("push", "pull", "import", "sync", "reconcile"):
                job = runs.get(kind)
                if job:
                    parts.append(f"{kind} job {job['id']} {job['state']} "
                                 f"{_when(job['finished_at'] or job['created_at'])}")
            cursor = runs.get("cursor")
            if cursor:
                parts.append(f"last pull success {_when(cursor['last_success_at'])}")
            write(f"  {entity}: " + "; ".join(parts))
