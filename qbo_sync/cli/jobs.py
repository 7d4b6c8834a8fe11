"""``qbo_sync push``, ``pull``, ``sync`` and ``import``: start a job through the services, then (by default) process
it in this process with progress; ``--dry-run`` only tells what would happen."""

from __future__ import annotations

import argparse
import datetime as dt
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import dateparse, timezone

from qbo_sync import registry
from qbo_sync.cli import Subcommand, resolve_organizations
from qbo_sync.cli.progress import (
    add_json_argument,
    add_org_argument,
    add_wait_arguments,
    check_timeout,
    one_line,
    org_label,
    start_all,
    target_organizations,
    wait_or_report,
)
from qbo_sync.exceptions import QboSyncError

WAIT_NOTE = ("By default the command then processes the job here, showing progress (a bar on a terminal, one line "
             "per chunk otherwise); --no-wait only queues it.")


def parse_ids(raw: str) -> list[str]:
    ids = [part.strip() for part in raw.split(",")]
    if not raw.strip() or any(not part for part in ids):
        raise CommandError(f"--ids takes a comma-separated list of ids, e.g. --ids 1,2,3; got {raw!r}.")
    return ids


def parse_since(raw: str) -> dt.datetime:
    """An ISO 8601 date or datetime; naive values are in settings.TIME_ZONE. Not in the future."""
    value: dt.datetime | None = None
    try:
        value = dateparse.parse_datetime(raw)
        if value is None:
            day = dateparse.parse_date(raw)
            value = dt.datetime.combine(day, dt.time()) if day else None
    except ValueError:
        value = None
    if value is None:
        raise CommandError(f"--since must be an ISO 8601 date or datetime (e.g. 2024-05-01 or "
                           f"2024-05-01T09:30:00Z); got {raw!r}.")
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    if value > timezone.now():
        raise CommandError(f"--since {raw} is in the future.")
    return value


def require_entity(options: dict[str, Any], verb: str, choices: tuple[str, ...]) -> str:
    if not options.get("entity"):
        raise CommandError(f"Name what to {verb}: one of {', '.join(choices)} (e.g. `qbo_sync {verb} Customer`).")
    return options["entity"]


class Push(Subcommand):
    name = "push"
    help = (f"Push the host's rows of one entity ({', '.join(registry.pushable())}) to QuickBooks as one job: --ids "
            "1,2,3 or --all. --dry-run prints what each row would get (create / link / update / revert / void / held / "
            "skip / refused, with the reason: the plan the push itself follows) and changes nothing. " + WAIT_NOTE)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from qbo_sync.services.jobs import PUSHABLE

        parser.add_argument("entity", nargs="?", metavar="ENTITY", help=f"One of {', '.join(PUSHABLE)}.")
        parser.add_argument("--ids", metavar="1,2,3", help="The host ids to push (needs --org).")
        parser.add_argument("--all", action="store_true", help="Every row of the entity.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Only print what would be pushed; queue nothing, send nothing.")
        add_org_argument(parser, "every connected organization; --ids needs one")
        add_wait_arguments(parser)
        add_json_argument(parser)

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.permissions import Actor
        from qbo_sync.services.jobs import PUSHABLE, preview_push
        from qbo_sync.services.operations import start_push

        entity = require_entity(options, "push", PUSHABLE)
        if options["ids"] is not None and options["all"]:
            raise CommandError("Give either --ids or --all, not both.")
        if options["ids"] is None and not options["all"]:
            raise CommandError("Say what to push: --ids 1,2,3 or --all.")
        ids = parse_ids(options["ids"]) if options["ids"] is not None else None
        if ids is not None and not options["org"]:
            raise CommandError("--ids needs --org ORG (ids belong to one organization).")
        check_timeout(options["timeout"])
        if options["dry_run"]:
            self.dry_run(command, options, entity, ids, preview_push)
            return
        orgs = target_organizations(options["org"])
        jobs = start_all(orgs, lambda org: start_push(Actor.system("cli"), org, entity, ids))
        wait_or_report(command, jobs, options, self.emit_json)

    def dry_run(self, command: BaseCommand, options: dict[str, Any], entity: str, ids: list[str] | None,
                preview: Any) -> None:
        from qbo_sync.services.plans import PUSH_ACTIONS

        orgs = resolve_organizations(options["org"]) if options["org"] else target_organizations(None)
        result = []
        for org in orgs:
            try:
                rows = preview(org.pk, entity, ids)
            except QboSyncError as exc:
                raise CommandError(f"{org_label(org)}: {one_line(exc)}") from None
            result.append((org, rows))
        if options["json"]:
            self.emit_json(command, {"dry_run": True, "entity": entity, "organizations": [
                {"organization": org_label(org), "summary": dict(Counter(r.action for r in rows)),
                 "rows": [{"id": r.object_id, "label": r.label, "action": r.action, "reason": r.reason}
                          for r in rows]}
                for org, rows in result]})
            return
        for org, rows in result:
            counts = Counter(r.action for r in rows)
            summary = ", ".join(f"{counts[a]} {a}" for a in PUSH_ACTIONS if counts[a])
            command.stdout.write(f"{org_label(org)}: dry run, {len(rows)} row(s): {summary or 'nothing to push'}")
            for r in rows:
                command.stdout.write(f"  {r.action:<7} {r.object_id:>8}  {r.label}"
                                     + (f"  ({r.reason})" if r.reason else ""))
        command.stdout.write("Dry run: nothing was queued or sent.")


class Pull(Subcommand):
    name = "pull"
    help = (f"Pull one entity ({', '.join(registry.pullable())}) from QuickBooks as one job: what changed since the "
            "last pull, --full (everything), or --since ISO (changes since then, once; the cursor moves on as after "
            "any pull). --dry-run asks QuickBooks how many records the pull would read and writes nothing. "
            + WAIT_NOTE)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from qbo_sync.services.jobs import PULLABLE

        parser.add_argument("entity", nargs="?", metavar="ENTITY", help=f"One of {', '.join(PULLABLE)}.")
        parser.add_argument("--full", action="store_true", help="Read every record, not only changes.")
        parser.add_argument("--since", metavar="ISO",
                            help="Read changes since this date/time (e.g. 2024-05-01 or 2024-05-01T09:30:00Z; "
                                 "naive values are in TIME_ZONE), instead of since the last pull.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Only count what would be read (one COUNT query per entity); change nothing.")
        add_org_argument(parser)
        add_wait_arguments(parser)
        add_json_argument(parser)

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.services.jobs import PULLABLE, _check_entity

        raw = require_entity(options, "pull", PULLABLE)
        if options["full"] and options["since"]:
            raise CommandError("Give either --full or --since, not both.")
        since = parse_since(options["since"]) if options["since"] else None
        try:
            entity = _check_entity(raw, PULLABLE, "pull")
        except QboSyncError as exc:
            raise CommandError(one_line(exc)) from None
        check_timeout(options["timeout"])
        orgs = target_organizations(options["org"])
        if options["dry_run"]:
            self.dry_run(command, options, orgs, entity, since)
            return
        jobs = start_all(orgs, lambda org: self.start(org, entity, full=options["full"], since=since))
        wait_or_report(command, jobs, options, self.emit_json)

    @staticmethod
    def start(org: Any, entity: str, *, full: bool, since: dt.datetime | None) -> Any:
        from qbo_sync.models import SyncJob
        from qbo_sync.permissions import Actor
        from qbo_sync.services.operations import start_pull

        if since is not None:
            active = (SyncJob.objects.filter(organization_id=org.pk, kind=SyncJob.Kind.PULL, entity_type=entity,
                                             state__in=[SyncJob.State.PENDING, SyncJob.State.RUNNING])
                      .values_list("pk", flat=True).first())
            if active is not None:
                raise CommandError(f"{org_label(org)}: a pull of {entity} is already queued or running (job "
                                   f"{active}); run --since again when it has finished.")
        return start_pull(Actor.system("cli"), org, entity, full=full, since=since)

    def dry_run(self, command: BaseCommand, options: dict[str, Any], orgs: list[Any], entity: str,
                since: dt.datetime | None) -> None:
        from qbo_sync.services.jobs import preview_pull

        reports = []
        for org in orgs:
            try:
                plan, counts = preview_pull(org.pk, entity, full=options["full"], since=since)
            except QboSyncError as exc:
                raise CommandError(f"{org_label(org)}: could not ask QuickBooks: {one_line(exc)}") from None
            reports.append({"organization": org_label(org), "mode": plan.mode, "since": plan.read_from,
                            "counts": counts})
        if options["json"]:
            self.emit_json(command, {"dry_run": True, "entity": entity, "organizations": reports})
            return
        for r in reports:
            window = "everything" if r["mode"] == "full" else f"changed since {r['since']}"
            counts_text = ", ".join(f"{n} {name}(s)" for name, n in r["counts"].items())
            command.stdout.write(f"{r['organization']}: dry run, a {r['mode']} pull of {entity} ({window}) would "
                                 f"read {counts_text}.")
        command.stdout.write("Dry run: nothing was queued or written.")


class Sync(Subcommand):
    name = "sync"
    help = ("Run a whole sync cycle: pull customers and items, push what the host changed, pull payments (one job "
            "each). " + WAIT_NOTE)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_org_argument(parser)
        add_wait_arguments(parser)
        add_json_argument(parser)

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.permissions import Actor
        from qbo_sync.services.operations import start_sync

        check_timeout(options["timeout"])
        orgs = target_organizations(options["org"])
        jobs = start_all(orgs, lambda org: start_sync(Actor.system("cli"), org))
        wait_or_report(command, jobs, options, self.emit_json)


class Import(Subcommand):
    name = "import"
    help = ("First import from QuickBooks: every customer and item (linked to existing host rows by natural "
            "key, created otherwise), then payments onto synced invoices. " + WAIT_NOTE)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_org_argument(parser)
        add_wait_arguments(parser)
        add_json_argument(parser)

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.permissions import Actor
        from qbo_sync.services.operations import start_import

        check_timeout(options["timeout"])
        orgs = target_organizations(options["org"])
        jobs = start_all(orgs, lambda org: start_import(Actor.system("cli"), org))
        wait_or_report(command, jobs, options, self.emit_json)
