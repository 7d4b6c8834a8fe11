"""The command as a process (exit status, ONE line on stderr for bad input) and its --help texts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from qbo_sync.management.commands import qbo_sync as qbo_sync_command
from qbo_sync.management.commands.qbo_sync import SUBCOMMANDS, Command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sqlite_env(tmp_path_factory, sqlite_copy):
    """A migrated file-based SQLite database with one organization, for `python manage.py` processes."""
    db = tmp_path_factory.mktemp("cli") / "cli.sqlite3"
    env = {**os.environ, "DATABASE_URL": sqlite_copy(db), "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    code = "from batchly.models import Organization; Organization.objects.create(name='Acme', slug='acme')"
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True, timeout=120)
    return env


#: The tests that share ``sqlite_env`` run on one xdist worker, so its database is made once per run, not per worker.
IN_ONE_PROCESS_OF_THE_SUITE = pytest.mark.xdist_group("cli-process")


def manage(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "qbo_sync", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("args", "message"), [
    (["status", "--org", "nope"], "No organization with slug 'nope'."),
    (["push", "Customer", "--ids", "1", "--all", "--org", "acme"], "Give either --ids or --all, not both."),
    (["push", "Customer", "--all", "--org", "acme"], "acme: This organization is not connected to QuickBooks"),
    (["pull", "Customer", "--full", "--since", "2024-01-01"], "Give either --full or --since, not both."),
    (["pull", "Customer", "--since", "nonsense", "--org", "acme"], "--since must be an ISO 8601 date"),
    (["conflicts", "resolve", "12345", "--keep", "qbo"], "No conflict with id 12345."),
])
@IN_ONE_PROCESS_OF_THE_SUITE
def test_bad_input_exits_non_zero_with_one_line(sqlite_env, args, message) -> None:
    result = manage(sqlite_env, *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert result.stdout == ""


@IN_ONE_PROCESS_OF_THE_SUITE
def test_status_json_in_a_process(sqlite_env) -> None:
    import json

    result = manage(sqlite_env, "status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["organizations"][0]["organization"] == "acme"
    assert data["organizations"][0]["connection"]["status"] == "disconnected"
    assert "connect --org acme" in data["organizations"][0]["connection"]["action"]


def _subparsers() -> dict:
    parser = Command().create_parser("manage.py", "qbo_sync")
    (action,) = [a for a in parser._actions if a.dest == "subcommand"]
    return action.choices


def test_every_registered_subcommand_has_help() -> None:
    parsers = _subparsers()
    assert {"connect", "disconnect", "status", "push", "pull", "sync", "import", "drain", "retry", "conflicts",
            "schedules", "sandbox", "rotate-keys"} <= set(parsers)
    assert len(parsers) == len(SUBCOMMANDS)  # none left out
    for name, sub in parsers.items():
        assert len(sub.description or "") > 20, name
        text = sub.format_help()
        assert f"qbo_sync {name}" in text


@pytest.mark.parametrize("name", ["status", "push", "pull", "sync", "import", "conflicts"])
def test_new_subcommands_take_org_and_json(name) -> None:
    text = _subparsers()[name].format_help()
    assert "--org ORG" in text and "--json" in text


@pytest.mark.parametrize("name", ["push", "pull", "sync", "import"])
def test_wait_is_the_documented_default(name) -> None:
    text = " ".join(_subparsers()[name].format_help().split())
    assert "--wait (default) Process the job's queue items now" in text
    assert "--no-wait Only queue the job" in text
    assert "--no-wait only queues it" in text


@IN_ONE_PROCESS_OF_THE_SUITE
def test_help_runs_as_a_process(sqlite_env) -> None:
    result = manage(sqlite_env, "push", "--help")
    assert result.returncode == 0 and "--dry-run" in result.stdout and "--ids 1,2,3" in result.stdout


def test_task_queue_chatter_stays_out_of_the_output(monkeypatch) -> None:
    """django-q2's "[Q] INFO Enqueued ..." lines were mixed into the command's output; -v 2 still shows them."""
    import io
    import logging

    from django.core.management import call_command

    from qbo_sync.cli.status import Status

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    q_logger = logging.getLogger("django-q")
    handler = Collect(level=logging.DEBUG)
    q_logger.addHandler(handler)
    monkeypatch.setattr(q_logger, "level", logging.INFO)

    def chatty(self, command, options) -> None:
        q_logger.info("Enqueued [ORM] 1")
        q_logger.warning("a real problem")
        command.stdout.write("status line")

    monkeypatch.setattr(Status, "handle", chatty)
    try:
        out = io.StringIO()
        call_command("qbo_sync", "status", stdout=out)
        assert [r.getMessage() for r in records] == ["a real problem"] and out.getvalue() == "status line\n"
        records.clear()
        call_command("qbo_sync", "status", verbosity=2, stdout=io.StringIO())
        assert [r.getMessage() for r in records] == ["Enqueued [ORM] 1", "a real problem"]
        assert q_logger.level == logging.INFO
    finally:
        q_logger.removeHandler(handler)


BROKEN = "tests.cli.broken_subcommand.Broken"


def test_a_subcommand_that_does_not_import_fails_the_command_loudly(monkeypatch) -> None:
    """It used to disappear from the command without a word (the ImportError was swallowed)."""
    monkeypatch.setattr(qbo_sync_command, "SUBCOMMANDS", [*SUBCOMMANDS, BROKEN])
    with pytest.raises(ImportError, match=rf"{BROKEN} does not import: No module named 'no_such_package_for_qbo_sync'"):
        call_command("qbo_sync", "status")


def test_only_a_declared_optional_dependency_may_be_missing_and_the_subcommand_says_so(monkeypatch) -> None:
    monkeypatch.setattr(qbo_sync_command, "SUBCOMMANDS", [*SUBCOMMANDS, BROKEN])
    monkeypatch.setattr(qbo_sync_command, "OPTIONAL", {BROKEN: ("broken", "no_such_package_for_qbo_sync")})
    assert "needs the no_such_package_for_qbo_sync package" in _subparsers()["broken"].description
    with pytest.raises(CommandError, match="pip install no_such_package_for_qbo_sync"):
        call_command("qbo_sync", "broken")
    monkeypatch.setattr(qbo_sync_command, "OPTIONAL", {BROKEN: ("broken", "some_other_package")})
    with pytest.raises(ImportError, match="does not import"):  # a different missing module is still an error
        _subparsers()


def test_sandbox_subcommand_takes_the_sandbox_options(monkeypatch) -> None:
    """`qbo_sync sandbox --port 8765` (as docs/commands.md and the README write it) was refused ("unrecognized
    arguments: --port"): the options reached the sandbox only after a `--`. They are the subcommand's own now."""
    import io

    from qbo_sync.cli import sandbox as cli_sandbox
    from qbo_sync.sandbox import __main__ as sandbox_main

    started = []
    monkeypatch.setattr(sandbox_main, "serve", started.append)
    call_command("qbo_sync", "sandbox", "--port", "0", "--realm", "4620816365000011", "--starter-data",
                 "--tax-model", "automated", stdout=io.StringIO())
    (sb,) = started
    assert sb.options["port"] == 0 and sb.options["tax_model"] == "automated" and "4620816365000011" in sb.realms

    text = _subparsers()["sandbox"].format_help()
    assert "--port PORT" in text and "--starter-data" in text and "(default: 8765)" in text

    with pytest.raises(CommandError, match="--latency-ms"):
        call_command("qbo_sync", "sandbox", "--latency-ms", "fast", stdout=io.StringIO())
    assert len(started) == 1 and cli_sandbox.Sandbox.name == "sandbox"


def test_a_reader_that_goes_away_ends_the_command_quietly(monkeypatch):
    """``qbo_sync reconcile | head``: the pipe closes while the command still writes; it stops with exit 1 and no
    traceback, its stdout pointed at /dev/null so that nothing is retried at exit."""
    class Chatty:
        name = "chatty"

        def handle(self, command, options):
            raise BrokenPipeError(32, "Broken pipe")

    redirected = []
    monkeypatch.setattr(qbo_sync_command.os, "dup2", lambda fd, fd2: redirected.append(fd2))
    monkeypatch.setattr(qbo_sync_command.sys.stdout, "fileno", lambda: 1, raising=False)
    command = Command()
    command.subcommands = {"chatty": Chatty()}
    with pytest.raises(SystemExit) as stopped:
        command.handle(subcommand="chatty", verbosity=1)
    assert stopped.value.code == 1
    assert redirected == [1]
