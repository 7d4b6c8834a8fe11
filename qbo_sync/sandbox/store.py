"""Per-realm company data: entities, id sequences, deleted stubs, requestid cache, counters."""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from typing import Any

from . import faults

ENTITY_TYPES = (
    "Account", "Customer", "Item", "Invoice", "Payment", "CreditMemo", "RefundReceipt", "CompanyInfo", "TaxCode",
    "TaxRate", "Preferences",
)
NAME_LISTS = ("Account", "Customer", "Item")
TRANSACTIONS = ("Invoice", "Payment", "CreditMemo", "RefundReceipt")
READ_ONLY_ENTITIES = ("CompanyInfo", "TaxCode", "TaxRate", "Preferences")  # no create/update/delete via the API
NOT_IN_CDC = ("TaxCode", "TaxRate")  # Intuit's CDC page lists them as unsupported (Preferences is not listed)
# company preferences a realm answers with until the server binds ``Realm.opt`` to its options
REALM_PREFERENCES: dict[str, Any] = {"tax_model": "none", "custom_txn_numbers": None}
REQUESTID_CACHE = 10_000  # remembered requestids per realm (no retention window is documented)


class Realm:
    """One QBO company. All mutation happens under ``lock``."""

    def __init__(self, realm_id: str):
        self.id = realm_id
        self.lock = threading.RLock()
        self.entities: dict[str, dict[str, dict]] = {t: {} for t in ENTITY_TYPES}
        self.seq: dict[str, int] = defaultdict(int)
        self.doc_number = 1000
        # deleted transactions: (type, id, epoch) -> CDC stubs
        self.deleted: list[tuple[str, str, float]] = []
        self.requestids: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self.batch_items: OrderedDict[str, dict] = OrderedDict()
        self.overrides: dict[str, Any] = {}
        self.stats: dict[str, Any] = new_stats()
        # the server replaces this with its per-realm option lookup (overrides, then global options)
        self.opt: Any = REALM_PREFERENCES.get

    # ------------------------------------------------------------------ ids
    def next_id(self, etype: str) -> str:
        self.seq[etype] += 1
        return str(self.seq[etype])

    def remember(self, key: str, value: tuple[int, bytes]) -> None:
        self.requestids[key] = value
        while len(self.requestids) > REQUESTID_CACHE:
            self.requestids.popitem(last=False)

    def remember_item(self, key: str, value: dict) -> None:
        self.batch_items[key] = value
        while len(self.batch_items) > REQUESTID_CACHE:
            self.batch_items.popitem(last=False)

    # ------------------------------------------------------------------ persistence
    def to_state(self) -> dict:
        return {
            "id": self.id,
            "entities": self.entities,
            "seq": dict(self.seq),
            "doc_number": self.doc_number,
            "deleted": self.deleted,
        }

    @classmethod
    def from_state(cls, data: dict) -> Realm:
        realm = cls(data["id"])
        for etype, objs in data.get("entities", {}).items():
            realm.entities.setdefault(etype, {}).update(objs)
        realm.seq.update(data.get("seq", {}))
        realm.doc_number = data.get("doc_number", 1000)
        realm.deleted = [tuple(x) for x in data.get("deleted", [])]
        return realm


def new_stats() -> dict[str, Any]:
    stats: dict[str, Any] = {
        "requests": defaultdict(int),  # by kind
        "throttled": defaultdict(int),  # by limit
        "deduplicated": 0,
        "auth_failures": 0,
        "scripted": defaultdict(int),  # scripted faults served, by fault name
    }
    for key, value in faults.new_counters().items():  # each fault's counter (faults.FAULTS)
        stats.setdefault(key, value)
    return stats


def stats_snapshot(realm: Realm) -> dict[str, Any]:
    s = realm.stats
    with realm.lock:
        counts: dict[str, int] = {}
        for etype, objs in realm.entities.items():
            if etype == "CompanyInfo":
                continue
            counts[etype] = len(objs)
        deleted = len(realm.deleted)
        counters = {key: dict(value) if isinstance(value, dict) else value for key, value in s.items()}
    return {
        "realmId": realm.id,
        **counters,
        "requests_total": sum(counters["requests"].values()),
        "throttled_total": sum(counters["throttled"].values()),
        "entities": counts,
        "deleted": deleted,
        "overrides": dict(realm.overrides),
    }
