"""``manage.py qbo_sync <subcommand>``: one command, one subcommand per use case (see ``--help``)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from qbo_sync.cli import Subcommand

SUBCOMMANDS = [
    "qbo_sync.cli.connect.Connect",
    "qbo_sync.cli.connect.Disconnect",
    "qbo_sync.cli.drain.Drain",
    "qbo_sync.cli.keys.RotateKeys",
    "qbo_sync.cli.pause.Pause",
    "qbo_sync.cli.pause.Resume",
    "qbo_sync.cli.purge.Purge",
    "qbo_sync.cli.reconcile.Reconcile",
    "qbo_sync.cli.retry.Retry",
    "qbo_sync.cli.sandbox.Sandbox",
    "qbo_sync.cli.schedules.Schedules",
    "qbo_sync.cli.status.Status",
    "qbo_sync.cli.jobs.Push",
    "qbo_sync.cli.jobs.Pull",
    "qbo_sync.cli.jobs.Sync",
    "qbo_sync.cli.jobs.Import",
    "qbo_sync.cli.conflicts.Conflicts",
]


class Command(BaseCommand):
    help = "Keep this project and QuickBooks Online in step. Run `qbo_sync SUBCOMMAND --help` for each subcommand."

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                                           parser_class=_subparser_class(parser))
        self.subcommands: dict[str, Subcommand] = {}
        for path in SUBCOMMANDS:
            try:
                sub: Subcommand = import_string(path)()
            except ImportError:
                continue  # a subcommand whose module is not in this build
            sub_parser = subparsers.add_parser(sub.name, help=sub.help, description=sub.help)
            sub.add_arguments(sub_parser)
            self.subcommands[sub.name] = sub

    def handle(self, *args: Any, **options: Any) -> None:
        sub = self.subcommands.get(options["subcommand"])
        if sub is None:
            raise CommandError(f"Unknown subcommand {options['subcommand']!r}.")
        with quiet_task_queue(options.get("verbosity", 1)):
            sub.handle(self, options)


@contextmanager
def quiet_task_queue(verbosity: int) -> Iterator[None]:
    """django-q2 logs every task it queues ("[Q] INFO Enqueued ...") on its own stderr handler; in a command's
    output those lines interleave with ours. Below ``-v 2`` only its warnings and errors get through."""
    logger = logging.getLogger("django-q")
    before = logger.level
    if verbosity < 2 and logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before)


def _subparser_class(parser: CommandParser) -> type[argparse.ArgumentParser]:
    """Subparsers that report bad arguments the way Django's own parser does (one line, non-zero exit)."""

    class SubParser(CommandParser):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("called_from_command_line", parser.called_from_command_line)
            kwargs.setdefault("missing_args_message", None)
            super().__init__(**kwargs)

    return SubParser
