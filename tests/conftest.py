"""Shared test setup: the QBO sandbox (one per session), database availability markers, factories."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.plugins.sandbox", "tests.plugins.databases", "tests.plugins.cputime"]


def _database_vendor() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return "postgresql" if url.startswith(("postgres://", "postgresql://", "pgsql://")) else "sqlite"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    vendor = _database_vendor()
    redis_url = os.environ.get("REDIS_URL", "")
    for item in items:
        if "postgres" in item.keywords and vendor != "postgresql":
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://... (.ci/run does)"))
        if "redis" in item.keywords and not redis_url:
            item.add_marker(pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://... (.ci/run does)"))
        # Under pytest-xdist (--dist loadgroup) the tests that share one outside resource run on one worker: the Redis
        # tests share REDIS_URL's database and django-q2's queue name; the browser test is heavy enough to run alone.
        for marker in ("redis", "e2e"):
            if marker in item.keywords:
                item.add_marker(pytest.mark.xdist_group(marker))
    # The slow tests start first: under pytest-xdist a long test dealt out last keeps its worker busy after the
    # others ran out of work (the reduced chaos run alone waits about a minute and a half). Stable: the rest keep
    # their order.
    items.sort(key=lambda item: "slow" not in item.keywords)
