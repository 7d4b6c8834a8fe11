"""Queue machinery tests: a fake processor instead of QBO, connections created directly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import pytest
from django.core.cache import cache

from qbo_sync.models import QboConnection, QueueItem
from qbo_sync.services.outcomes import Outcome
from tests.factories import OrganizationFactory


class FakeProcessor:
    """Records every item it is given; answers with ``rule(item)`` (default: completed)."""

    def __init__(self, rule: Callable[[QueueItem], Outcome] | None = None) -> None:
        self.rule = rule or (lambda item: Outcome.completed())
        self.calls: list[tuple[int, list[int]]] = []
        self.seen: Counter[int] = Counter()
        self.before: Callable[[Sequence[QueueItem]], None] | None = None

    def __call__(self, organization_id: int, items: Sequence[QueueItem]) -> dict[int, Outcome]:
        self.calls.append((organization_id, [item.pk for item in items]))
        self.seen.update(item.pk for item in items)
        if self.before is not None:
            self.before(items)
        return {item.pk: self.rule(item) for item in items}


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def processor(settings) -> FakeProcessor:
    """A stand-in for the sync rules: ``QBO_SYNC["PROCESSOR"]`` (a setting may hold the callable itself)."""
    fake = FakeProcessor()
    settings.QBO_SYNC = {**settings.QBO_SYNC, "PROCESSOR": fake}
    return fake


_realm = iter(range(9_100_000, 9_999_999))


def make_org(status: str = QboConnection.Status.CONNECTED, slug: str | None = None):
    org = OrganizationFactory(**({"slug": slug} if slug else {}))
    QboConnection.objects.create(organization=org, realm_id=str(next(_realm)), status=status)
    return org


@pytest.fixture
def org(db):
    return make_org()
