"""Browser fixtures: Debian's chromium driven through Playwright (never ``playwright install``).

``chromium_executable`` installs chromium with apt when it is missing and the tests run as root with a working
apt; otherwise every browser test is skipped, and the reason says what is missing and how to fix it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("QBO_SYNC_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]


def _apt_install_chromium() -> str:
    """Try ``apt-get install -y chromium``; returns "" on success, else why it could not."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not running as root, so it cannot be installed here: run `sudo apt-get install -y chromium`"
    if shutil.which("apt-get") is None:
        return "apt-get is not available to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900, check=False)
    if result.returncode != 0:  # the package lists may be missing or stale
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env, timeout=600, check=False)
        result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"`apt-get install -y chromium` failed: {tail[0]}"
    return ""


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    if not CHROMIUM.exists():
        problem = _apt_install_chromium()
        if problem or not CHROMIUM.exists():
            pytest.skip(f"Debian's chromium is missing at {CHROMIUM}; {problem or 'the package did not provide it'}")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def browser(chromium_executable):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the `playwright` package (test extra) is missing")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes around it are still
    # synchronous, so Django's async-safety guard must not stop them.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_executable, headless=True, args=LAUNCH_ARGS)
        yield instance
        instance.close()
