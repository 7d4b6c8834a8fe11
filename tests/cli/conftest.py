"""CLI fixtures: the integration ones (an organization connected to a sandbox realm, the accountant, run_queue) and
a helper that runs ``manage.py qbo_sync ...`` in-process and returns its stdout."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from tests.integration.conftest import accountant, connection, org, run_queue, sandbox_settings  # noqa: F401


class Terminal(io.StringIO):
    """A stdout that says it is a terminal (the progress bar's case)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def qbo():
    """``qbo("push", "Customer", "--all", tty=False) -> stdout``."""

    def run(*args: str, tty: bool = False) -> str:
        out = Terminal() if tty else io.StringIO()
        call_command("qbo_sync", *args, stdout=out, stderr=io.StringIO())
        return out.getvalue()

    return run


def last_json(output: str):
    """The JSON object on the last line of the output."""
    return json.loads(output.strip().splitlines()[-1])
