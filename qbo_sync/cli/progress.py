"""Shared pieces of the job-starting subcommands (push, pull, sync, import): which organizations, starting jobs
all-or-nothing, and waiting for them in this process with a progress bar (a terminal) or one line per chunk."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from qbo_sync.cli import resolve_organizations
from qbo_sync.exceptions import QboSyncError

BAR_WIDTH = 30
#: The longest nap while the jobs' items wait for their retry time or for another worker.
IDLE_SLEEP_SECONDS = 1.0


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def org_label(org: Any) -> str:
    from qbo_sync.organizations import organization_ref

    return organization_ref(org)


def add_org_argument(parser: argparse.ArgumentParser, what: str = "every connected organization") -> None:
    parser.add_argument("--org", metavar="ORG", help=f"Only this organization (default: {what}).")


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="Print one JSON object on the last line (no progress lines) for scripts.")


def add_wait_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", dest="wait", action="store_true", default=True,
        help="(default) Process the job's queue items now, in this process, showing progress, until the job "
             "finishes. Needs no django-q2 worker.")
    parser.add_argument(
        "--no-wait", dest="wait", action="store_false",
        help="Only queue the job and print its id; a worker (or `qbo_sync drain`) processes it.")
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS",
        help="With --wait: stop waiting after this many seconds (the job stays queued). Default: until done.")


def target_organizations(slug: str | None) -> list[Any]:
    """``--org ORG`` (which must be connected) or every organization with a QuickBooks connection.

    One clear error for an unknown organization, an organization that is not connected, or no connected organization.
    """
    from qbo_sync.models import QboConnection
    from qbo_sync.services.jobs import require_connection

    orgs = resolve_organizations(slug)
    if slug is not None:
        try:
            require_connection(orgs[0].pk)
        except QboSyncError as exc:
            raise CommandError(f"{org_label(orgs[0])}: {one_line(exc)}") from None
        return orgs
    connected = set(QboConnection.objects.exclude(status=QboConnection.Status.DISCONNECTED)
                    .values_list("organization_id", flat=True))
    orgs = [o for o in orgs if o.pk in connected]
    if not orgs:
        raise CommandError("No organization is connected to QuickBooks; connect one with "
                           "`manage.py qbo_sync connect --org ORG`.")
    return orgs


def start_all(orgs: Sequence[Any], start: Callable[[Any], Any]) -> list[Any]:
    """Run ``start(org)`` for every organization in one transaction: one refusal (QboInputError, CommandError)
    rolls every job back, so nothing is half-started. ``start`` returns a job or a list of jobs."""
    jobs: list[Any] = []
    try:
        with transaction.atomic():
            for org in orgs:
                result = start(org)
                jobs.extend(result if isinstance(result, list) else [result])
    except QboSyncError as exc:
        prefix = f"{org_label(org)}: " if len(orgs) > 1 else ""
        raise CommandError(prefix + one_line(exc)) from None
    return jobs


def check_timeout(value: float | None) -> None:
    if value is not None and value <= 0:
        raise CommandError("--timeout must be a positive number of seconds.")


def job_figures(job: Any) -> Any:
    """The job's progress now (a ``JobProgress``, computed by the progress service)."""
    from qbo_sync.services.progress import job_progress

    job.refresh_from_db()
    return job_progress(job)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    return str(timedelta(seconds=round(seconds)))


def progress_bar(figures: Any) -> str:
    """One line redrawn in a terminal, from a ``CombinedProgress``."""
    filled = int(BAR_WIDTH * figures.percent / 100)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    text = (f"[{bar}] {figures.done}/{figures.total} {figures.percent:5.1f}%  "
            f"{figures.rate_per_minute:.1f}/min  ETA {format_eta(figures.eta_seconds)}")
    if figures.failures:
        text += f"  {figures.failures} failed"
    if figures.why_slow:
        text += f"  ({figures.why_slow})"
    return text


def progress_line(chunks: int, figures: Any) -> str:
    """One line per chunk (not a terminal), from a ``CombinedProgress``."""
    text = (f"chunk {chunks}: {figures.done}/{figures.total} done ({figures.percent:.1f}%), "
            f"{figures.failures} failed, {figures.rate_per_minute:.1f}/min, "
            f"ETA {format_eta(figures.eta_seconds)}")
    return text + (f" ({figures.why_slow})" if figures.why_slow else "")


class JobWaiter:
    """Drains the queue in this process until the given jobs finish, the timeout passes, or their organizations'
    connections stop being usable; reports progress after each chunk."""

    def __init__(self, command: BaseCommand, jobs: Sequence[Any], *, quiet: bool, timeout: float | None) -> None:
        self.command = command
        self.jobs = list(jobs)
        self.quiet = quiet
        self.timeout = timeout
        self.tty = (not quiet) and command.stdout.isatty()
        self.chunks = 0
        self.stopped = ""

    def figures(self) -> Any:
        from qbo_sync.services.progress import combine

        return combine([job_figures(job) for job in self.jobs])

    def show(self, figures: Any, final: bool = False) -> None:
        if self.quiet:
            return
        if self.tty:
            self.command.stdout.write("\r" + progress_bar(figures), ending="\n" if final else "")
            self.command.stdout.flush()
        elif not final:
            self.command.stdout.write(progress_line(self.chunks, figures))

    def run(self) -> str:
        """Returns why it stopped: ``finished``, ``timeout``, ``not connected`` or ``interrupted``."""
        from qbo_sync.models import QboConnection, QueueItem
        from qbo_sync.services.drain import drain

        org_ids = sorted({job.organization_id for job in self.jobs})
        only_org = org_ids[0] if len(org_ids) == 1 else None
        job_ids = [job.pk for job in self.jobs]
        deadline = None if self.timeout is None else time.monotonic() + self.timeout

        def on_chunk(chunk: Any, report: Any) -> None:
            self.chunks += 1
            self.show(self.figures())

        self.show(self.figures())
        try:
            while True:
                open_items = QueueItem.objects.filter(job_id__in=job_ids, status__in=[
                    QueueItem.Status.PENDING, QueueItem.Status.PROCESSING])
                if not open_items.exists():
                    self.stopped = "finished"
                    break
                usable = QboConnection.objects.filter(organization_id__in=org_ids,
                                                      status=QboConnection.Status.CONNECTED).count()
                if usable < len(org_ids):
                    self.stopped = "not connected"
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self.stopped = "timeout"
                    break
                report = drain(budget_seconds=left, organization_id=only_org, on_chunk=on_chunk)
                if report.stopped != "idle" or not open_items.exists():
                    continue
                # Nothing is due now: the jobs' items wait for a retry time, or another worker holds them.
                next_due = (open_items.filter(status=QueueItem.Status.PENDING).order_by("next_attempt_at")
                            .values_list("next_attempt_at", flat=True).first())
                nap = IDLE_SLEEP_SECONDS
                if next_due is not None:
                    nap = min(nap, max(0.05, (next_due - timezone.now()).total_seconds()))
                if deadline is not None:
                    nap = min(nap, max(0.0, deadline - time.monotonic()))
                time.sleep(nap)
        except KeyboardInterrupt:
            self.stopped = "interrupted"
        self.show(self.figures(), final=True)
        return self.stopped


def wait_or_report(command: BaseCommand, jobs: Sequence[Any], options: dict[str, Any], emit_json: Callable,
                   extra: dict[str, Any] | None = None) -> None:
    """After the jobs are queued: wait for them (``--wait``) or only say they are queued; then the summary (text
    lines, or the JSON object with ``jobs`` and ``waited``/``stopped``)."""
    quiet = bool(options.get("json"))
    stopped = ""
    if not quiet:
        for job in jobs:
            command.stdout.write(f"Queued job {job.pk}: {job.description} (organization {job.organization_id}).")
    if options.get("wait", True) and jobs:
        stopped = JobWaiter(command, jobs, quiet=quiet, timeout=options.get("timeout")).run()
    progresses = [job_figures(job) for job in jobs]
    if quiet:
        summaries = [{**p.as_dict(), "organization_id": job.organization_id, "description": job.description}
                     for job, p in zip(jobs, progresses, strict=True)]
        emit_json(command, {**(extra or {}), "jobs": summaries, "waited": bool(options.get("wait", True)),
                            "stopped": stopped or None})
        return
    for p in progresses:
        c = p.counts
        line = (f"Job {p.job} ({p.kind} {p.entity_type or 'all'}): {p.shown_state}, {p.done}/{p.total} "
                f"done, {c.completed} completed, {c.failed} failed, {c.dead} dead")
        if p.remaining and p.why_slow:
            line += f", {p.remaining} remaining ({p.why_slow})."
        else:
            line += f", {p.remaining} remaining." if p.remaining else "."
        command.stdout.write(line)
    if stopped == "timeout":
        command.stdout.write("Stopped waiting (--timeout); the rest stays queued for the workers or `qbo_sync drain`.")
    elif stopped == "not connected":
        command.stdout.write("Stopped waiting: the QuickBooks connection is not usable (needs re-authorisation?); "
                             "the work stays queued. See `qbo_sync status`, then `qbo_sync connect --org ORG`.")
    elif stopped == "interrupted":
        command.stdout.write("Interrupted; the rest stays queued for the workers or `qbo_sync drain`.")
    elif not options.get("wait", True):
        command.stdout.write("Not waiting (--no-wait): a worker or `qbo_sync drain` processes the queue.")
