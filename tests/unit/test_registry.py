"""The entity registry: every list of entities is derived from the registered specs, and no literal one comes back."""

from __future__ import annotations

import ast
import datetime as dt
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from qbo_sync import mapping, registry
from qbo_sync.mapping.base import Direction, EntitySpec, Mapper, NaturalKey

ROOT = Path(__file__).resolve().parents[2] / "qbo_sync"
#: Where entity names may be listed: the registry itself, the mapping modules (each entity's SPEC and its QBO
#: shapes), migrations (history) and the sandbox (a stand-in for QuickBooks: it imports nothing of ours).
EXEMPT = ("registry.py", "mapping/", "migrations/", "sandbox/")
#: Literals allowed elsewhere, each with its reason: (path, the entity names it holds).
ALLOWED = {
    # The client's table of QBO's own name lists (Vendor, Account ... too): a fact about QuickBooks' query language,
    # not a capability of qbo_sync; the client knows nothing of the registry.
    ("client/http.py", frozenset({"Customer", "Item"})),
}


def _literal_entity_lists(tree: ast.AST, known: set[str]) -> list[tuple[int, frozenset[str]]]:
    """Tuples, lists, sets and dicts written with two or more entity names as literal strings."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            elements: list[ast.expr | None] = [*node.keys, *node.values]
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            elements = list(node.elts)
        else:
            continue
        named = frozenset(e.value for e in elements
                          if isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value in known)
        if len(named) >= 2:
            found.append((node.lineno, named))
    return found


def test_no_literal_lists_of_entities_outside_the_registry() -> None:
    known = set(registry.qbo_names())
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(EXEMPT):
            continue
        for line, named in _literal_entity_lists(ast.parse(path.read_text(), str(path)), known):
            if (rel, named) not in ALLOWED:
                offenders.append(f"qbo_sync/{rel}:{line}: {sorted(named)}")
    assert not offenders, ("Entity lists belong to the registry (qbo_sync/registry.py derives them from each "
                           "mapping module's SPEC); found literal ones:\n" + "\n".join(offenders))


def test_the_scan_sees_every_form_of_literal() -> None:
    source = ('A = ("Customer", "Item")\nB = ["Invoice", "Payment"]\nC = {"Customer", "Invoice"}\n'
              'D = {"Invoice": "Payment"}\nE = ("Customer",)\nF = {"customer": "Customer"}\n')
    found = _literal_entity_lists(ast.parse(source), {"Customer", "Item", "Invoice", "Payment"})
    assert [line for line, _ in found] == [1, 2, 3, 4]


def test_the_lists_derived_are_the_ones_the_code_used_to_spell_out() -> None:
    assert registry.names() == ("Customer", "Item", "Invoice", "Payment")
    assert registry.pushable() == registry.push_order() == ("Customer", "Item", "Invoice")
    assert registry.pullable() == ("Customer", "Item", "Payment")
    assert registry.two_way() == registry.name_lists() == registry.targeted_pullable() == ("Customer", "Item")
    assert registry.with_adapters() == ("Customer", "Item", "Invoice")
    assert registry.schedules() == {"customers": "Customer", "items": "Item", "payments": "Payment"}
    assert registry.webhook_routes() == {"Customer": "Customer", "Item": "Item", "Invoice": "Payment",
                                         "Payment": "Payment", "CreditMemo": "Payment", "RefundReceipt": "Payment"}
    assert registry.pull_for("Vendor") is None
    assert registry.spec("Payment").reads == ("Invoice", "Payment", "RefundReceipt")
    assert registry.problems(max_length=16) == []


def test_callers_use_the_registry() -> None:
    from qbo_sync.admin import actions
    from qbo_sync.api import views
    from qbo_sync.services import jobs, reconcile, sync
    from qbo_sync.tasks import PULL_ENTITIES
    from qbo_sync.webhooks import views as webhook_views

    assert jobs.PUSHABLE == actions.PUSH_ENTITIES == tuple(sync.ORDER) == registry.pushable()
    assert jobs.PULLABLE == registry.pullable() and actions.PULL_ENTITIES == registry.targeted_pullable()
    assert reconcile.NAME_ENTITIES == registry.name_lists()
    assert views.RECORD_ENTITIES == ["customer", "item", "invoice"]
    assert webhook_views.PULL_FOR == registry.webhook_routes()
    assert PULL_ENTITIES == registry.schedules()


@pytest.mark.parametrize(("text", "expected"), [
    ("invoice", "Invoice"), ("Invoices", "Invoice"), (" CUSTOMERS ", "Customer"), ("Payment", "Payment"),
    ("salesorder", None), ("", None), (None, None),
])
def test_lookup_takes_a_name_as_people_type_it(text: Any, expected: str | None) -> None:
    assert registry.lookup(text) == expected


def test_lookup_among_some_entities_only() -> None:
    assert registry.lookup("payments", registry.pushable()) is None
    assert registry.lookup("items", registry.pushable()) == "Item"


def test_entity_columns_accept_registered_names_only() -> None:
    registry.validate_entity_name("Invoice")
    registry.validate_entity_name("")  # blank: a job of several entities, a log line about none
    with pytest.raises(ValidationError, match="SalesOrder"):
        registry.validate_entity_name("SalesOrder")


def test_every_mapping_module_is_a_mapper() -> None:
    mappers: list[Mapper] = list(mapping.MAPPERS.values())  # mypy checks the modules against the Protocol
    for mapper in mappers:
        assert isinstance(mapper.SPEC, EntitySpec) and callable(mapper.to_qbo) and callable(mapper.from_qbo)


def _vendor_module() -> types.ModuleType:
    """A Vendor-like name list, registered the way docs/architecture.md says: a mapping module with a SPEC."""
    module = types.ModuleType("vendors")
    module.SPEC = EntitySpec(  # type: ignore[attr-defined]
        qbo_name="Vendor", direction=Direction.BOTH, fields=("display_name", "email"), name_list=True,
        natural_keys=(NaturalKey("display_name", "DisplayName"),), qbo_page="vendordetail?nameId=",
    )

    def from_qbo(payload: Mapping[str, Any]) -> dict[str, Any]:
        return {"display_name": payload.get("DisplayName", ""), "email": ""}

    module.from_qbo = from_qbo  # type: ignore[attr-defined]
    module.to_qbo = lambda values, **kw: {"DisplayName": values["display_name"]}  # type: ignore[attr-defined]
    module.qbo_updated_at = lambda payload: dt.datetime.now(dt.UTC)  # type: ignore[attr-defined]
    return module


def test_a_new_entity_arrives_by_registration_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(mapping.MAPPERS, "Vendor", _vendor_module())
    assert registry.pushable() == ("Customer", "Item", "Invoice", "Vendor")
    assert "Vendor" in registry.pullable() and "Vendor" in registry.name_lists()
    assert registry.schedules()["vendors"] == "Vendor"
    assert registry.pull_for("Vendor") == "Vendor" and registry.lookup("vendors") == "Vendor"
    assert registry.has_adapter("Vendor")
    registry.validate_entity_name("Vendor")
    assert registry.problems(max_length=16) == []


def test_problems_name_what_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    bill = types.ModuleType("bills")
    bill.SPEC = EntitySpec(qbo_name="VendorBillPaymentX", direction=Direction.PULL,  # type: ignore[attr-defined]
                           fields=("amount",), depends_on=("Vendor",), triggered_by=("Invoice",))
    monkeypatch.setitem(mapping.MAPPERS, "VendorBillPaymentX", bill)
    found = registry.problems(max_length=16)
    assert any("depends on 'Vendor'" in p for p in found)
    assert any("would trigger both Payment and VendorBillPaymentX" in p for p in found)
    assert any("longer than the entity columns" in p for p in found)


def test_a_dependency_circle_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, other in (("Aaa", "Bbb"), ("Bbb", "Aaa")):
        module = types.ModuleType(name)
        module.SPEC = EntitySpec(qbo_name=name, direction=Direction.PUSH,  # type: ignore[attr-defined]
                                 fields=("x",), depends_on=(other,))
        monkeypatch.setitem(mapping.MAPPERS, name, module)
    with pytest.raises(ValueError, match="circle"):
        registry.specs()
    assert any("circle" in p for p in registry.problems())


def test_the_system_check_reports_a_broken_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from qbo_sync.checks import check_entity_registry

    assert check_entity_registry() == []
    broken = types.ModuleType("bills")
    broken.SPEC = EntitySpec(qbo_name="Bill", direction=Direction.PUSH, fields=("x",),  # type: ignore[attr-defined]
                             depends_on=("Vendor",))
    monkeypatch.setitem(mapping.MAPPERS, "Bill", broken)
    (error,) = check_entity_registry()
    assert error.id == "qbo_sync.E018" and "Bill depends on 'Vendor'" in error.msg


@pytest.mark.django_db
def test_entity_columns_take_a_newly_registered_entity_without_a_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    from qbo_sync.models import PullCursor

    field = PullCursor._meta.get_field("entity_type")
    assert not field.choices  # nothing a new entity would have to migrate
    with pytest.raises(ValidationError):
        field.run_validators("Vendor")
    monkeypatch.setitem(mapping.MAPPERS, "Vendor", _vendor_module())
    field.run_validators("Vendor")
    assert [name for name, _ in _entity_filter_choices()] == [*registry.names()]


def _entity_filter_choices() -> list[tuple[str, str]]:
    from qbo_sync.admin.registration import EntityTypeFilter

    return EntityTypeFilter.lookups(None, None, None)  # type: ignore[arg-type]


def test_the_link_predicate_lives_in_the_spec() -> None:
    items, customers = registry.spec("Item").same_record, registry.spec("Customer").same_record
    assert items is not None and customers is not None and registry.spec("Invoice").same_record is None
    assert items({"sku": " AB-1 "}, {"sku": "AB-1"}) and items({"sku": ""}, {"sku": "X"})
    assert not items({"sku": "ab-1"}, {"sku": "AB-1"})  # a SKU is a code: case counts
    assert customers({"email": "Amy@X.com"}, {"email": "amy@x.com "})
    assert customers({"given_name": "Amy", "family_name": "Bird"}, {"given_name": "AMY", "family_name": " bird"})
    assert customers({"company_name": "Acme  Ltd"}, {"company_name": "acme ltd"})
    assert not customers({"email": "a@x.com", "company_name": "Acme"}, {"email": "b@x.com", "company_name": "Other"})
    assert not customers({"given_name": "Amy"}, {"given_name": "Amy"})  # a first name alone is not enough
