"""``manage.py demo``: the main job (see batchly/demo.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = ("Run the whole sync story against the bundled QuickBooks sandbox (a company with automated sales tax): "
            "import, push thousands of invoices with progress, an accountant's edits and payments, a conflict, a "
            "reconciliation ending in 'Books match.', and a summary table.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--invoices", type=int, default=3000, help="Invoices to create and push (default 3000).")
        parser.add_argument("--customers", type=int, default=200, help="Batchly customers (default 200).")
        parser.add_argument("--items", type=int, default=40, help="Batchly items (default 40).")
        parser.add_argument("--time-scale", type=float, default=20.0,
                            help="Run QBO's per-minute limits this many times faster (default 20; 1 = real time).")

    def handle(self, *args: Any, **options: Any) -> None:
        from batchly.demo import Demo

        for name in ("invoices", "customers", "items"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be at least 1.")
        if options["time_scale"] <= 0:
            raise CommandError("--time-scale must be positive.")
        Demo(invoices=options["invoices"], customers=options["customers"], items=options["items"],
             time_scale=options["time_scale"], write=self.stdout.write).run()
