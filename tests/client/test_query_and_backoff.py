"""Query-value escaping, paging detection and retry delays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from qbo_sync.client import backoff_delay, escape_value, in_list, quote_value
from qbo_sync.client.http import throttle_delay
from qbo_sync.client.query import has_paging


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("Amy's Bird Sanctuary", r"'Amy\'s Bird Sanctuary'"),
        ("plain", "'plain'"),
        ("", "''"),
        ("back\\slash", r"'back\\slash'"),
        (r"sneaky\' OR 1=1", r"'sneaky\\\' OR 1=1'"),
        ("Johnson & Johnson", "'Johnson & Johnson'"),
        ("ünïcødé 'x'", r"'ünïcødé \'x\''"),
    ],
)
def test_quote_value_strings(raw: str, quoted: str) -> None:
    assert quote_value(raw) == quoted


def test_escaped_value_cannot_close_the_literal() -> None:
    for raw in ["'", "\\'", "\\\\'", "a'b'c", "'; SELECT"]:
        inner = escape_value(raw)
        # Every quote inside is preceded by an odd number of backslashes.
        for i, ch in enumerate(inner):
            if ch == "'":
                run = len(inner[:i]) - len(inner[:i].rstrip("\\"))
                assert run % 2 == 1, (raw, inner)


def test_quote_value_other_types() -> None:
    assert quote_value(True) == "true" and quote_value(False) == "false"
    assert quote_value(42) == "42"
    assert quote_value(Decimal("10.50")) == "10.50"
    assert quote_value(date(2025, 1, 2)) == "'2025-01-02'"
    pacific = timezone(timedelta(hours=-8))
    assert quote_value(datetime(2025, 1, 1, 0, 0, 0, 123, tzinfo=pacific)) == "'2025-01-01T00:00:00-08:00'"
    assert quote_value(datetime(2025, 1, 1, tzinfo=UTC)) == "'2025-01-01T00:00:00+00:00'"
    with pytest.raises(ValueError):
        quote_value(datetime(2025, 1, 1))  # naive
    with pytest.raises(TypeError):
        quote_value(1.5)  # type: ignore[arg-type]


def test_in_list() -> None:
    assert in_list(["1", "2", "O'Neil"]) == r"('1', '2', 'O\'Neil')"
    with pytest.raises(ValueError):
        in_list([])


def test_has_paging_ignores_literals() -> None:
    assert has_paging("SELECT * FROM Customer STARTPOSITION 1")
    assert has_paging("select * from Customer maxresults 10")
    assert not has_paging("SELECT * FROM Customer WHERE DisplayName = 'MAXRESULTS Ltd'")
    assert not has_paging(r"SELECT * FROM Customer WHERE DisplayName = 'It\'s STARTPOSITION'")


def test_backoff_grows_is_capped_and_jittered() -> None:
    lows = [backoff_delay(n, base=0.5, cap=8, rng=lambda: 0.0) for n in range(1, 8)]
    highs = [backoff_delay(n, base=0.5, cap=8, rng=lambda: 1.0) for n in range(1, 8)]
    assert lows == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert highs == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert all(0 < d for d in lows)
    with pytest.raises(ValueError):
        backoff_delay(0, base=1, cap=1)


def test_throttle_delay_never_shorter_than_asked() -> None:
    assert throttle_delay(60, rng=lambda: 0.0) == 60
    assert throttle_delay(60, rng=lambda: 1.0) == pytest.approx(72)
