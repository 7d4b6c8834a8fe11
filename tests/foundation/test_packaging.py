"""What the wheel is made of (pyproject.toml): only the qbo_sync package, its version from qbo_sync.__version__,
every runtime dependency pinned in requirements.lock, and a long description and shipped docs that never name the
demo project. The wheel itself is built and installed into a fresh virtualenv by examples/shop/run_from_wheel.py
(make shop, CI)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import qbo_sync

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
HOST_NAME = "batch" + "ly"


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]).lower()


def test_the_wheel_holds_only_the_library_package() -> None:
    assert PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"] == ["qbo_sync*"]


def test_the_version_is_qbo_sync_dunder_version() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "qbo_sync.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", qbo_sync.__version__)
    assert "## " + qbo_sync.__version__.split(".dev")[0] in (ROOT / "CHANGELOG.md").read_text()


def test_supported_versions_and_license_metadata() -> None:
    project = PYPROJECT["project"]
    assert project["requires-python"] == ">=3.11"
    assert "Django>=5.2,<6.1" in project["dependencies"]
    assert isinstance(project["license"], str)  # an SPDX expression, not the deprecated table
    assert {"Framework :: Django :: 5.2", "Framework :: Django :: 6.0"} <= set(project["classifiers"])


def test_every_runtime_dependency_is_pinned_in_the_lock() -> None:
    pinned = {_name(line) for line in (ROOT / "requirements.lock").read_text().splitlines()
              if re.match(r"^[A-Za-z0-9]", line)}
    assert {_name(r) for r in PYPROJECT["project"]["dependencies"]} <= pinned
    assert "django-environ" not in {_name(r) for r in PYPROJECT["project"]["dependencies"]}  # qbo_sync never used it


def test_the_long_description_and_shipped_docs_never_name_the_demo_host() -> None:
    shipped = [ROOT / PYPROJECT["project"]["readme"]]
    for patterns in PYPROJECT["tool"]["setuptools"]["data-files"].values():
        for pattern in patterns:
            shipped += sorted(ROOT.glob(pattern))
    assert len(shipped) >= 5
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in shipped
                 for n, line in enumerate(p.read_text().splitlines(), 1) if HOST_NAME in line.lower()]
    assert offenders == []
