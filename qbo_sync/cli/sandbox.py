from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand

from qbo_sync.cli import Subcommand


class Sandbox(Subcommand):
    name = "sandbox"
    help = "Start the bundled QuickBooks Online sandbox server (the same as `python -m qbo_sync.sandbox`)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("sandbox_args", nargs=argparse.REMAINDER,
                            help="Options of the sandbox; see `python -m qbo_sync.sandbox --help`.")

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.sandbox.__main__ import main

        main(options["sandbox_args"])
