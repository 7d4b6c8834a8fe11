"""A subcommand module whose import fails (a missing package), for tests/cli/test_process_and_help.py."""

from __future__ import annotations

import no_such_package_for_qbo_sync  # noqa: F401

from qbo_sync.cli import Subcommand


class Broken(Subcommand):
    name = "broken"
    help = "Never registered: its module does not import."
