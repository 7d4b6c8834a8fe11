"""Helpers for the mapping tests: real-shaped QBO payloads copied from ../shared/qbo/samples into ./data."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


@cache
def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def load(name: str) -> Any:
    """A fresh deep copy of a payload, so a test can change it freely."""
    return copy.deepcopy(_load(name))


def query_invoice(qbo_id: str) -> dict[str, Any]:
    for invoice in load("query_invoices_paid_partial_response.json")["QueryResponse"]["Invoice"]:
        if invoice["Id"] == qbo_id:
            return dict(invoice)
    raise KeyError(qbo_id)


@pytest.fixture
def payload():
    return load
