from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from qbo_sync.cli import Subcommand


class Sandbox(Subcommand):
    name = "sandbox"
    help = ("Start the bundled QuickBooks Online sandbox server (the same as `python -m qbo_sync.sandbox`, with the "
            "same options) and run it until Ctrl-C.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from qbo_sync.sandbox.__main__ import add_arguments

        parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
        add_arguments(parser)

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.sandbox.__main__ import sandbox_from, serve

        try:
            sb = sandbox_from(argparse.Namespace(**options))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        serve(sb)
