"""``manage.py qbo_sync <subcommand>``: one command, one subcommand per use case (see ``--help``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
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

#: Subcommands that need a package qbo_sync does not require: path -> (subcommand name, module of that package).
#: Only such a subcommand, and only when exactly that module is missing, is left out (it then explains itself);
#: any other import error fails the command loudly. None needs one today.
OPTIONAL: dict[str, tuple[str, str]] = {}


class Command(BaseCommand):
    help = "Keep this project and QuickBooks Online in step. Run `qbo_sync SUBCOMMAND --help` for each subcommand."

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True,
                                           parser_class=_subparser_class(parser))
        self.subcommands: dict[str, Subcommand] = {}
        for path in SUBCOMMANDS:
            sub = _load(path)
            sub_parser = subparsers.add_parser(sub.name, help=sub.help, description=sub.help)
            sub.add_arguments(sub_parser)
            self.subcommands[sub.name] = sub

    def handle(self, *args: Any, **options: Any) -> None:
        sub = self.subcommands.get(options["subcommand"])
        if sub is None:
            raise CommandError(f"Unknown subcommand {options['subcommand']!r}.")
        with quiet_task_queue(options.get("verbosity", 1)):
            try:
                sub.handle(self, options)
            except BrokenPipeError:
                reader_went_away()


def reader_went_away() -> None:
    """The output's reader closed early (``qbo_sync reconcile | head``): stop quietly, as command-line tools do,
    instead of a traceback. Output still buffered goes nowhere (Python would retry the write at exit and fail)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a real file (captured): nothing is left to flush
    sys.exit(1)


def _load(path: str) -> Subcommand:
    """The subcommand at ``path``. A broken import is an error naming the subcommand (it used to vanish from the
    command without a word); only a missing optional dependency declared in ``OPTIONAL`` is tolerated."""
    try:
        sub: Subcommand = import_string(path)()
    except ImportError as exc:
        name, dependency = OPTIONAL.get(path, ("", ""))
        missing = getattr(exc, "name", None)
        if dependency and missing is not None and (missing == dependency or missing.startswith(f"{dependency}.")):
            return Unavailable(name, dependency)
        raise ImportError(f"The qbo_sync subcommand {path} does not import: {exc}") from exc
    return sub


class Unavailable(Subcommand):
    """Stands in for a subcommand whose optional dependency is not installed: listed, and says what to install."""

    def __init__(self, name: str, dependency: str) -> None:
        self.name = name  # type: ignore[misc]  # a per-instance name for the placeholder
        self.dependency = dependency
        self.help = f"Unavailable: needs the {dependency} package, which is not installed."  # type: ignore[misc]

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        raise CommandError(f"`qbo_sync {self.name}` needs the {self.dependency} package: install it "
                           f"(pip install {self.dependency}) and run it again.")


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
