"""qbo_sync is installed into projects that never heard of the demo host: no host name inside the package."""

from __future__ import annotations

from pathlib import Path

from django.test import override_settings

import qbo_sync
from qbo_sync.conf import host_label
from qbo_sync.services.reconcile import Drift

PACKAGE = Path(qbo_sync.__file__).resolve().parent
HOST_NAME = "batch" + "ly"  # spelled apart so this file does not match its own search
SUFFIXES = {".py", ".html", ".txt", ".md"}



def offenders() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix not in SUFFIXES or not path.is_file():
            continue
        rel = path.relative_to(PACKAGE).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if HOST_NAME in line.lower():
                found.append(f"qbo_sync/{rel}:{number}: {line.strip()}")
    return found


def test_the_package_never_names_the_demo_host() -> None:
    assert offenders() == []


def test_host_label_defaults_to_a_neutral_name() -> None:
    with override_settings(QBO_SYNC={}):
        assert host_label() == "the app"
        assert host_label(capital=True) == "The app"
        line = Drift("not_in_qbo", "Customer", "7", "", "Ann is not in QuickBooks", "requeue_push").line()
        assert line.startswith("Customer The app 7 / QBO -: not_in_qbo")
        assert "host row" in line


def test_host_label_comes_from_settings() -> None:
    with override_settings(QBO_SYNC={"HOST_LABEL": "Shop"}):
        assert host_label() == "Shop"
        assert Drift("not_in_host", "Item", "", "9", "x", "repull").line().startswith("Item Shop - / QBO 9")
