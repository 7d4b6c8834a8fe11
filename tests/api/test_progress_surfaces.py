"""One job's progress, as the API, the admin and the command line show it: the same figures, computed once
(``services/progress.py``); the surfaces only render them."""

from __future__ import annotations

import io
import json
import re

import pytest
import time_machine
from django.core.management.base import BaseCommand
from django.urls import reverse
from django.utils import timezone

from qbo_sync.cli.progress import format_eta, job_figures, progress_bar, progress_line, wait_or_report
from qbo_sync.services import pause
from qbo_sync.services.outcomes import Outcome
from qbo_sync.services.progress import combine
from tests.api.test_jobs import finish_items, job_url

pytestmark = pytest.mark.django_db

SHARED = ("state", "total", "pending", "processing", "completed", "failed", "dead", "cancelled", "done", "remaining",
          "percent", "rate_per_minute", "throttle_ceiling_per_minute", "eta_seconds", "slow_reason", "paused",
          "pause_reason")


def admin_rows(html: str) -> dict[str, str]:
    table = re.search(r'<table class="qbo-job-progress">(.*?)</table>', html, re.S)
    assert table, html
    return dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table.group(1)))


def cli_output(job, **options) -> str:
    out = io.StringIO()
    command = BaseCommand(stdout=out)

    def emit(cmd, data):
        cmd.stdout.write(json.dumps(data, default=str))

    wait_or_report(command, [job], {"wait": False, **options}, emit)
    return out.getvalue()


@pytest.mark.parametrize("paused", [False, True], ids=["running", "paused"])
def test_api_admin_and_cli_show_the_same_progress(api, admin_client, org_a, make_push_job, paused):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        job = make_push_job(org_a, 5)
        finish_items(job, 2)
        finish_items(job, 1, Outcome.failed("Duplicate name", code="6240"))
        traveller.shift(60)  # three finished in the last minute: 3.0 a minute, the two left take 40 s
        if paused:
            pause.pause(org_a.pk, "month-end close")
        job.refresh_from_db()

        body = api.get(job_url(job.pk)).json()
        admin = admin_rows(admin_client.get(reverse("admin:qbo_sync_syncjob_change", args=[job.pk])).content
                           .decode())
        listing = admin_client.get(reverse("admin:qbo_sync_syncjob_changelist")).content.decode()
        text = cli_output(job)
        as_json = json.loads(cli_output(job, json=True).strip().splitlines()[-1])["jobs"][0]
        figures = combine([job_figures(job)])
        line, bar = progress_line(1, figures), progress_bar(figures)

    assert (body["done"], body["total"], body["percent"], body["rate_per_minute"], body["eta_seconds"]) == (
        3, 5, 60.0, 3.0, 40.0)
    reason = "paused: month-end close" if paused else None
    assert (body["slow_reason"], body["paused"], body["pause_reason"]) == (
        ("paused", True, "month-end close") if paused else (None, False, ""))

    # The command line's --json is the API's figures.
    assert {k: as_json[k] for k in SHARED} == {k: body[k] for k in SHARED}

    # The admin renders them.
    assert admin["Done"] == f"{body['done']} of {body['total']} ({body['percent']}%)"
    assert admin["Rate"] == f"{body['rate_per_minute']} per minute"
    assert admin["ETA"] == f"{body['eta_seconds']:.0f} s"
    assert (admin["Completed"], admin["Failed"], admin["Pending"]) == ("2", "1", "2")
    assert admin["State"] == ("paused" if paused else body["state"])
    assert admin["Slow because"] == (reason or "—")
    assert f"{body['done']}/{body['total']} ({body['percent']}%)" in listing and "1 failed" in listing

    # So does the command line (the per-chunk line, the terminal bar, the summary).
    assert f"{body['done']}/{body['total']} done ({body['percent']:.1f}%), 1 failed, " \
           f"{body['rate_per_minute']:.1f}/min, ETA {format_eta(body['eta_seconds'])}" in line
    assert f"] {body['done']}/{body['total']} {body['percent']:5.1f}%  {body['rate_per_minute']:.1f}/min  " \
           f"ETA {format_eta(body['eta_seconds'])}  1 failed" in bar
    assert line.endswith(f" ({reason})") if reason else line.endswith(format_eta(body["eta_seconds"]))
    summary = next(ln for ln in text.splitlines() if ln.startswith(f"Job {job.pk} "))
    assert summary.startswith(f"Job {job.pk} (push Customer): {'paused' if paused else body['state']}, 3/5 done, "
                              "2 completed, 1 failed, 0 dead, 2 remaining")
    assert summary.endswith(f"({reason}).") if reason else summary.endswith("2 remaining.")
