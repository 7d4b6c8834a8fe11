"""Building QBO query-language text safely.

QBO's SQL-like language quotes strings with single quotes and escapes an apostrophe with a backslash
(``'Amy\\'s Bird Sanctuary'``). Values must go through :func:`quote_value`; never format user data into a
query by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

__all__ = ["escape_value", "has_paging", "in_list", "quote_value"]

_PAGING = re.compile(r"\b(STARTPOSITION|MAXRESULTS)\b", re.IGNORECASE)


def escape_value(text: str) -> str:
    """Escape a string for use between single quotes (backslash first, then the apostrophe)."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def quote_value(value: str | bool | int | Decimal | datetime | date) -> str:
    """A literal for a WHERE clause: quoted and escaped strings, ``true``/``false``, numbers, ISO dates.

    Datetimes must be timezone-aware: QBO compares ``MetaData.LastUpdatedTime`` with an offset.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("query datetimes must be timezone-aware")
        return f"'{value.isoformat(timespec='seconds')}'"
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return f"'{escape_value(value)}'"
    raise TypeError(f"cannot use {type(value).__name__} in a QBO query")


def in_list(values: Iterable[str | int | Decimal]) -> str:
    """``('a', 'b')`` for an ``IN`` clause."""
    items = [quote_value(v) for v in values]
    if not items:
        raise ValueError("IN list must not be empty")
    return "(" + ", ".join(items) + ")"


def has_paging(sql: str) -> bool:
    """True if the query already names STARTPOSITION or MAXRESULTS outside string literals."""
    without_literals = re.sub(r"'(?:\\.|[^'\\])*'", "''", sql)
    return bool(_PAGING.search(without_literals))
