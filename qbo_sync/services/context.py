"""What every sync step of one organization needs: its connection, a client for its realm, today's date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from qbo_sync.client import QboClient
from qbo_sync.models import QboConnection


@dataclass
class SyncContext:
    organization_id: int
    connection: QboConnection
    client: QboClient
    today: dt.date = field(default_factory=timezone.localdate)
    job_id: int | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def realm_id(self) -> str:
        return self.connection.realm_id

    @classmethod
    def for_organization(cls, organization_id: int, *, job_id: int | None = None) -> SyncContext:
        from qbo_sync.services.connect import client_for

        connection = QboConnection.objects.get(organization_id=organization_id)
        return cls(organization_id=organization_id, connection=connection, client=client_for(connection),
                   job_id=job_id)


def query_in(ctx: SyncContext, entity: str, field: str, values: Iterable[str | None]) -> list[dict[str, Any]]:
    """Every ``entity`` whose ``field`` is one of ``values`` (ids QuickBooks gave us), 200 values a query."""
    wanted = sorted({str(v) for v in values if v})
    rows: list[dict[str, Any]] = []
    for start in range(0, len(wanted), 200):
        listed = ", ".join("'" + v.replace("'", "\\'") + "'" for v in wanted[start:start + 200])
        rows.extend(ctx.client.query_all(f"SELECT * FROM {entity} WHERE {field} IN ({listed})"))  # noqa: S608
    return rows


def customer_of(txn: dict[str, Any]) -> str:
    """The QBO id of the customer a transaction (invoice, payment, refund receipt) belongs to ("" when none)."""
    return str((txn.get("CustomerRef") or {}).get("value") or "")
