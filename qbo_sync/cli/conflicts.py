"""``qbo_sync conflicts [list | resolve ID --keep host|qbo | resolve ID --value V]``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qbo_sync.cli import Subcommand, resolve_organizations
from qbo_sync.cli.progress import add_json_argument, one_line, org_label
from qbo_sync.conf import host_label
from qbo_sync.exceptions import QboSyncError

STATES = ("open", "auto_resolved", "resolved", "all")


def conflict_row(conflict: Any) -> dict[str, Any]:
    return {
        "id": conflict.pk,
        "organization": org_label(conflict.organization),
        "entity": conflict.entity_type,
        "object_id": conflict.mapping.object_id,
        "qbo_id": conflict.mapping.qbo_id,
        "field": conflict.field,
        "base": conflict.base_value,
        "host": conflict.host_value,
        "qbo": conflict.qbo_value,
        "rule": conflict.rule,
        "state": conflict.state,
        "winner": conflict.winner,
        "resolved_value": conflict.resolved_value,
        "created_at": conflict.created_at,
    }


def parse_value(raw: str, conflict: Any) -> Any:
    """The edited value: a string when the field holds strings, else JSON (numbers, true/false, null)."""
    sides = [v for v in (conflict.host_value, conflict.qbo_value, conflict.base_value) if v is not None]
    if all(isinstance(v, str) for v in sides):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class Conflicts(Subcommand):
    name = "conflicts"
    help = ("List sync conflicts (default: the open ones, waiting for a person) or resolve one: "
            "`conflicts resolve ID --keep host|qbo`, or `--value V` to keep an edited value. The kept value is "
            "written to the app and pushed to QuickBooks when QuickBooks does not hold it.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", nargs="?", choices=["list", "resolve"], default="list",
                            help="list (default) or resolve.")
        parser.add_argument("conflict_id", nargs="?", metavar="ID", help="With resolve: the conflict's id.")
        parser.add_argument("--keep", choices=["host", "qbo"], help="With resolve: which side's value wins.")
        parser.add_argument("--value", metavar="V",
                            help="With resolve, instead of --keep: keep this edited value (JSON for numbers).")
        parser.add_argument("--state", choices=STATES, default="open",
                            help="With list: which conflicts (default open).")
        parser.add_argument("--org", metavar="ORG", help="Only this organization (default: every one).")
        add_json_argument(parser)

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.models import Conflict

        orgs = resolve_organizations(options["org"]) if options["org"] else None
        qs = Conflict.objects.select_related("mapping", "organization").order_by("pk")
        if orgs is not None:
            qs = qs.filter(organization_id=orgs[0].pk)
        if options["action"] == "list":
            if options["conflict_id"] or options["keep"] or options["value"] is not None:
                raise CommandError("`conflicts list` takes no ID, --keep or --value; use `conflicts resolve ID`.")
            self.list(command, options, qs)
        else:
            self.resolve(command, options, qs)

    def list(self, command: BaseCommand, options: dict[str, Any], qs: Any) -> None:
        if options["state"] != "all":
            qs = qs.filter(state=options["state"])
        rows = [conflict_row(c) for c in qs]
        if options["json"]:
            self.emit_json(command, {"state": options["state"], "count": len(rows), "conflicts": rows})
            return
        label = "" if options["state"] == "all" else options["state"].replace("_", "-") + " "
        if not rows:
            command.stdout.write(f"No {label}conflicts.")
            return
        command.stdout.write(f"{len(rows)} {label}conflict(s):")
        for r in rows:
            command.stdout.write(
                f"  #{r['id']} organization {r['organization']}: {r['entity']} {r['object_id']} "
                f"(QBO {r['qbo_id'] or '-'}) "
                f"{r['field']}: {host_label()} {json.dumps(r['host'], default=str)} vs QuickBooks "
                f"{json.dumps(r['qbo'], default=str)} (base {json.dumps(r['base'], default=str)}; rule {r['rule']}"
                f"{'; ' + r['state'] if options['state'] == 'all' else ''})")
        if options["state"] == "open":
            command.stdout.write("Resolve one with `qbo_sync conflicts resolve ID --keep host|qbo` "
                                 "(or `--value V` to keep an edited value).")

    def resolve(self, command: BaseCommand, options: dict[str, Any], qs: Any) -> None:
        from qbo_sync.permissions import Actor
        from qbo_sync.services.conflicts import QboValueError
        from qbo_sync.services.operations import resolve_conflict

        raw_id = options["conflict_id"]
        if not raw_id:
            raise CommandError("Name the conflict: `qbo_sync conflicts resolve ID --keep host|qbo`.")
        if not raw_id.isdigit():
            raise CommandError(f"A conflict id is a number; got {raw_id!r}.")
        if options["keep"] and options["value"] is not None:
            raise CommandError("Give either --keep or --value, not both.")
        if not options["keep"] and options["value"] is None:
            raise CommandError("Say which value to keep: --keep host, --keep qbo or --value V.")
        conflict = qs.filter(pk=int(raw_id)).first()
        if conflict is None:
            where = f" in {options['org']}" if options["org"] else ""
            raise CommandError(f"No conflict with id {raw_id}{where}.")
        if options["value"] is not None:
            keep, value = "value", parse_value(options["value"], conflict)
        else:
            keep, value = options["keep"], None
        try:
            conflict = resolve_conflict(Actor.system("cli"), conflict, keep, value=value)
        except QboValueError as exc:
            raise CommandError(f"--value refused, nothing changed: {one_line(exc)}") from None
        except QboSyncError as exc:
            raise CommandError(one_line(exc)) from None
        conflict = qs.get(pk=conflict.pk)
        row = conflict_row(conflict)
        if options["json"]:
            self.emit_json(command, {"resolved": row})
            return
        pushed = " (queued to push to QuickBooks)" if row["resolved_value"] != row["qbo"] else ""
        command.stdout.write(f"Resolved conflict #{row['id']} ({row['entity']} {row['object_id']}.{row['field']}): "
                             f"kept {json.dumps(row['resolved_value'], default=str)}{pushed}.")
