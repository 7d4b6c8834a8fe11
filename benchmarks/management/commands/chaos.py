"""``manage.py chaos``: the chaos suite (see benchmarks/chaos.py); ``make chaos`` runs it on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = ("Push COUNT invoices and edit, pay and pull on both sides against the bundled sandbox while injecting "
            "faults, expiring tokens, SIGKILLing workers and restarting the sandbox; end with reconciliation and "
            "a table (duplicates, lost items and drift must be 0). --json prints one JSON object last.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=3000, help="Invoices to push (default 3000).")
        parser.add_argument("--time-scale", type=float, default=60.0, help="QBO time runs this much faster.")
        parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                            help="A fresh database of this kind (postgres: CHAOS_PG_URL or postgres://postgres@"
                                 "127.0.0.1:5432).")
        parser.add_argument("--clusters", type=int, default=None, help="django-q2 clusters (sqlite 1, postgres 2).")
        parser.add_argument("--kills", type=int, default=4, help="SIGKILLs of a cluster mid-chunk (default 4).")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--lease-seconds", type=float, default=None, help="Queue lease (default 20 s).")
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object, last.")
        parser.add_argument("--strict", action="store_true", help="Exit non-zero unless duplicates, lost and "
                                                                  "drift are all 0.")
        parser.add_argument("--inner", action="store_true", help=argparse_suppress())
        parser.add_argument("--workdir", help=argparse_suppress())

    def handle(self, *args: Any, **options: Any) -> None:
        settings.DEBUG = False  # measured as a deployment runs (a checkout's DEBUG logs every query)
        import os

        from benchmarks import chaos

        if options["count"] < 10:
            raise CommandError("--count must be at least 10.")
        if options["time_scale"] <= 0:
            raise CommandError("--time-scale must be positive.")
        if options["inner"]:
            result = chaos.inner_main(count=options["count"], time_scale=options["time_scale"],
                                      clusters=options["clusters"] or 1, kills=options["kills"], seed=options["seed"],
                                      workdir=options["workdir"], database=options["db"], write=self.stdout.write)
            self.stdout.write(json.dumps(result, sort_keys=True, default=str))
            return
        result = chaos.run(count=options["count"], time_scale=options["time_scale"], database=options["db"],
                           clusters=options["clusters"], kills=options["kills"], seed=options["seed"],
                           lease_seconds=options["lease_seconds"], write=self.stdout.write,
                           pg_url=os.environ.get("CHAOS_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
        if options["json"]:
            self.stdout.write(json.dumps(result, sort_keys=True, default=str))
        if options["strict"] and (not result or result["duplicates"] or result["lost"] or result["drift"]):
            raise CommandError("chaos: duplicates, lost items or drift found (see the table above).")


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS
