"""QBO business rules for Account, Customer, Item, Invoice, Payment, CreditMemo, RefundReceipt and CompanyInfo.

Every public function runs with ``realm.lock`` held by the caller and either raises
:class:`~qbo_sync.sandbox.util.QBOError` without changing anything, or commits and returns
``(entity_type, object, events)`` where ``events`` are ``(entity, id, operation, epoch)`` tuples
for webhooks (operation in Create/Update/Delete/Void).
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from . import tax
from .store import NAME_LISTS, READ_ONLY_ENTITIES, Realm
from .util import (
    QBOError,
    business,
    company_date,
    duplicate_name,
    fmt_meta,
    invalid_id,
    money,
    not_found,
    required,
    stale,
    to_decimal,
    unknown_property,
    unsupported,
)

Event = tuple[str, str, str, float]
USD = {"value": "USD", "name": "United States Dollar"}
ZERO = Decimal("0")

# Properties QBO knows for each entity (a request naming anything else gets 2010). Read-only ones are
# accepted and ignored, as QBO does when a client sends back what it read.
_COMMON = {"Id", "SyncToken", "sparse", "domain", "MetaData", "status"}
KNOWN: dict[str, set[str]] = {
    "Customer": _COMMON | {
        "Title", "GivenName", "MiddleName", "FamilyName", "Suffix", "DisplayName", "FullyQualifiedName",
        "CompanyName", "PrintOnCheckName", "Active", "PrimaryPhone", "AlternatePhone", "Mobile", "Fax",
        "PrimaryEmailAddr", "WebAddr", "DefaultTaxCodeRef", "Taxable", "BillAddr", "ShipAddr", "Notes", "Job",
        "BillWithParent", "ParentRef", "Level", "SalesTermRef", "PaymentMethodRef", "Balance", "OpenBalanceDate",
        "BalanceWithJobs", "CurrencyRef", "PreferredDeliveryMethod", "ResaleNum", "ARAccountRef",
        "PrimaryTaxIdentifier", "SecondaryTaxIdentifier", "TaxExemptionReasonId", "IsProject", "CustomerTypeRef",
        "BusinessNumber", "GSTIN", "GSTRegistrationType", "ClientEntityId", "CustomField", "V4IDPseudonym",
    },
    "Item": _COMMON | {
        "Name", "Sku", "Description", "Active", "SubItem", "ParentRef", "Level", "FullyQualifiedName", "Taxable",
        "SalesTaxIncluded", "UnitPrice", "Type", "IncomeAccountRef", "PurchaseDesc", "PurchaseTaxIncluded",
        "PurchaseCost", "ExpenseAccountRef", "AssetAccountRef", "TrackQtyOnHand", "QtyOnHand", "InvStartDate",
        "SalesTaxCodeRef", "PurchaseTaxCodeRef", "AbatementRate", "ReverseChargeRate", "ServiceType",
        "ItemCategoryType", "ClassRef", "PrefVendorRef", "ReorderPoint", "UQCId", "TaxClassificationRef",
    },
    "Account": _COMMON | {
        "Name", "SubAccount", "ParentRef", "FullyQualifiedName", "Description", "Active", "Classification",
        "AccountType", "AccountSubType", "AcctNum", "CurrentBalance", "CurrentBalanceWithSubAccounts",
        "CurrencyRef", "TaxCodeRef", "TxnLocationType",
    },
    "Invoice": _COMMON | {
        "DocNumber", "TxnDate", "DueDate", "ShipDate", "Line", "CustomerRef", "CustomerMemo", "BillAddr",
        "ShipAddr", "FreeFormAddress", "ShipFromAddr", "SalesTermRef", "TotalAmt", "Balance", "HomeBalance",
        "HomeTotalAmt", "Deposit", "DepositToAccountRef", "ApplyTaxAfterDiscount", "PrintStatus", "EmailStatus",
        "BillEmail", "BillEmailCc", "BillEmailBcc", "DeliveryInfo", "AllowIPNPayment", "AllowOnlinePayment",
        "AllowOnlineCreditCardPayment", "AllowOnlineACHPayment", "LinkedTxn", "PrivateNote", "TxnTaxDetail",
        "CurrencyRef", "ExchangeRate", "CustomField", "DepartmentRef", "ClassRef", "ShipMethodRef", "TrackingNum",
        "GlobalTaxCalculation", "TaxExemptionRef", "RecurDataRef", "InvoiceLink", "EInvoiceStatus", "TxnSource",
        "TransactionLocationType", "SalesRepRef", "PONumber", "TxnStatus", "AutoDocNumber", "Tag",
    },
    "Payment": _COMMON | {
        "TxnDate", "CustomerRef", "TotalAmt", "UnappliedAmt", "Line", "PaymentMethodRef", "PaymentRefNum",
        "DepositToAccountRef", "ARAccountRef", "PrivateNote", "CurrencyRef", "ExchangeRate", "ProcessPayment",
        "CreditCardPayment", "TxnSource", "TxnStatus", "TaxExemptionRef", "TransactionLocationType",
        "DocNumber", "LinkedTxn",
    },
    "CreditMemo": _COMMON | {
        "DocNumber", "TxnDate", "Line", "CustomerRef", "CustomerMemo", "BillAddr", "ShipAddr", "TotalAmt",
        "Balance", "RemainingCredit", "PrivateNote", "TxnTaxDetail", "CurrencyRef", "ExchangeRate", "ClassRef",
        "DepartmentRef", "SalesTermRef", "BillEmail", "PrintStatus", "EmailStatus", "CustomField", "ProjectRef",
        "InvoiceRef", "ApplyTaxAfterDiscount", "GlobalTaxCalculation", "TxnSource", "HomeBalance", "HomeTotalAmt",
        "LinkedTxn",
    },
    "RefundReceipt": _COMMON | {
        "DocNumber", "TxnDate", "Line", "CustomerRef", "CustomerMemo", "BillAddr", "ShipAddr", "TotalAmt",
        "Balance", "PrivateNote", "TxnTaxDetail", "CurrencyRef", "ExchangeRate", "ClassRef", "DepartmentRef",
        "DepositToAccountRef", "PaymentMethodRef", "PaymentRefNum", "PaymentType", "CheckPayment",
        "CreditCardPayment", "BillEmail", "PrintStatus", "CustomField", "ApplyTaxAfterDiscount",
        "GlobalTaxCalculation", "TxnSource", "HomeBalance", "HomeTotalAmt", "LinkedTxn",
    },
}
READ_ONLY = {
    "Id", "SyncToken", "sparse", "domain", "MetaData", "status", "FullyQualifiedName", "Level", "Balance",
    "BalanceWithJobs", "TotalAmt", "HomeBalance", "HomeTotalAmt", "LinkedTxn", "UnappliedAmt", "Job",
    "CurrentBalance", "CurrentBalanceWithSubAccounts", "Classification", "IsProject", "InvoiceLink", "TxnStatus",
    "RemainingCredit",
}
# TotalAmt is writable (and required) on Payment
WRITABLE_EXCEPTIONS = {"Payment": {"TotalAmt"}}

CLASSIFICATION = {
    "Income": "Revenue", "Other Income": "Revenue", "Expense": "Expense", "Other Expense": "Expense",
    "Cost of Goods Sold": "Expense", "Bank": "Asset", "Other Current Asset": "Asset", "Fixed Asset": "Asset",
    "Other Asset": "Asset", "Accounts Receivable": "Asset", "Equity": "Equity", "Accounts Payable": "Liability",
    "Credit Card": "Liability", "Long Term Liability": "Liability", "Other Current Liability": "Liability",
}


# --------------------------------------------------------------------------- helpers


def check_id(value: Any) -> str:
    s = str(value).strip() if value is not None else ""
    if not s.isdigit():
        raise invalid_id(value)
    return str(int(s))


def _meta(obj: dict, now: float, create: bool) -> None:
    stamp = fmt_meta(now)
    md = obj.get("MetaData") if not create else None
    obj["MetaData"] = {"CreateTime": md["CreateTime"] if md else stamp, "LastUpdatedTime": stamp}
    obj["_upd"] = now
    if create:
        obj["_created"] = now


def touch(obj: dict, now: float, bump: bool = True) -> None:
    """Record a change: SyncToken+1 (when bump) and LastUpdatedTime."""
    if bump:
        obj["SyncToken"] = str(int(obj["SyncToken"]) + 1)
    obj["MetaData"] = {"CreateTime": obj["MetaData"]["CreateTime"], "LastUpdatedTime": fmt_meta(now)}
    obj["_upd"] = now


def get_live(realm: Realm, etype: str, oid: Any) -> dict:
    if etype == "TaxCode" and str(oid).strip().upper() in tax.PSEUDO_CODES:
        return realm.entities[etype][str(oid).strip().upper()]
    obj = realm.entities[etype].get(check_id(oid))
    if obj is None:
        raise not_found()
    return obj


def resolve_ref(realm: Realm, etype: str, ref: Any, label: str) -> dict:
    """A reference must name an existing, active object (else 610)."""
    if not isinstance(ref, dict) or ref.get("value") in (None, ""):
        raise required(label)
    value = str(ref["value"]).strip()
    if not value.isdigit():
        raise not_found()
    obj = realm.entities[etype].get(str(int(value)))
    if obj is None or obj.get("Active") is False:
        raise not_found()
    return obj


def ref_to(obj: dict, name_key: str = "DisplayName") -> dict:
    return {"value": obj["Id"], "name": obj.get(name_key) or obj.get("Name") or ""}


def _clean_input(etype: str, body: dict) -> dict:
    """Reject unknown properties; return writable ones with None / '' dropped."""
    known = KNOWN[etype]
    out = {}
    writable_extra = WRITABLE_EXCEPTIONS.get(etype, set())
    for key, value in body.items():
        if key not in known:
            raise unknown_property(key, etype)
        if key in READ_ONLY and key not in writable_extra:
            continue
        if value is None or value == "":
            continue
        out[key] = value
    return out


def _check_sync(obj: dict, body: dict) -> None:
    token = body.get("SyncToken")
    if token is None or token == "":
        raise required("SyncToken")
    try:
        token = str(int(str(token)))
    except ValueError:
        raise stale() from None
    if token != obj["SyncToken"]:
        raise stale()


def _parse_date(value: Any, label: str) -> str:
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        raise business(f"Invalid date for {label}: {value}") from None


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


# --------------------------------------------------------------------------- bootstrap


def bootstrap(realm: Realm, now: float, company_name: str | None = None) -> None:
    """A new, empty company: CompanyInfo plus the accounts invoices and payments need."""
    if realm.entities["CompanyInfo"]:
        return
    for name, atype, sub in (
        ("Sales of Product Income", "Income", "SalesOfProductIncome"),
        ("Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
        ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    ):
        _account_write(realm, None, {"Name": name, "AccountType": atype, "AccountSubType": sub}, now, False)
    stamp = fmt_meta(now)
    addr = {"Id": "1", "Line1": "123 Sierra Way", "City": "San Pablo", "CountrySubDivisionCode": "CA",
            "PostalCode": "87999"}
    realm.entities["CompanyInfo"]["1"] = {
        "CompanyName": company_name or f"Sandbox Company_US_{realm.id}",
        "LegalName": company_name or f"Sandbox Company_US_{realm.id}",
        "CompanyAddr": addr, "CustomerCommunicationAddr": addr, "LegalAddr": addr,
        "PrimaryPhone": {}, "CompanyStartDate": company_date(now), "FiscalYearStartMonth": "January",
        "Country": "US", "Email": {"Address": "noreply@quickbooks.com"}, "WebAddr": {},
        "SupportedLanguages": "en", "DefaultTimeZone": "America/Los_Angeles",
        "NameValue": [{"Name": "NeoEnabled", "Value": "true"}, {"Name": "IndustryType", "Value": "Sandbox"},
                      {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"}],
        "domain": "QBO", "sparse": False, "Id": "1", "SyncToken": "0",
        "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}, "_upd": now, "_created": now,
    }
    tax.bootstrap(realm, now)


def income_account(realm: Realm) -> dict:
    for acc in realm.entities["Account"].values():
        if acc.get("AccountType") == "Income" and acc.get("Active", True):
            return acc
    raise not_found()


def _account_by_subtype(realm: Realm, sub: str) -> dict | None:
    for acc in realm.entities["Account"].values():
        if acc.get("AccountSubType") == sub:
            return acc
    return None


# --------------------------------------------------------------------------- dispatch


def create(realm: Realm, etype: str, body: Any, now: float,
           include: frozenset[str] = frozenset()) -> tuple[str, dict, list[Event]]:
    """``include``: the request's ``include=`` values (``allowduplicatedocnum``)."""
    body = _body(body, etype)
    if etype in READ_ONLY_ENTITIES:
        raise unsupported("Operation Create is not supported.")
    fn = _WRITERS[etype]
    obj, events = fn(realm, None, body, now, False, **({"include": include} if etype == "Invoice" else {}))
    return etype, obj, events


def update(realm: Realm, etype: str, body: Any, now: float,
           include: frozenset[str] = frozenset()) -> tuple[str, dict, list[Event]]:
    body = _body(body, etype)
    if etype in READ_ONLY_ENTITIES:
        raise unsupported("Operation Update is not supported.")
    if body.get("Id") in (None, ""):
        raise required("Id")
    existing = get_live(realm, etype, body["Id"])
    _check_sync(existing, body)
    sparse = _bool(body.get("sparse"), False)
    obj, events = _WRITERS[etype](realm, existing, body, now, sparse,
                                  **({"include": include} if etype == "Invoice" else {}))
    return etype, obj, events


def delete(realm: Realm, etype: str, body: Any, now: float,
           include: frozenset[str] = frozenset()) -> tuple[str, dict, list[Event]]:
    body = _body(body, etype)
    if etype in NAME_LISTS or etype in READ_ONLY_ENTITIES:
        raise unsupported(f"Operation Delete is not supported for {etype}; make it inactive (Active=false).")
    if body.get("Id") in (None, ""):
        raise required("Id")
    existing = get_live(realm, etype, body["Id"])
    _check_sync(existing, body)
    events: list[Event] = []
    if etype in ("Invoice", "CreditMemo"):
        if existing.get("_applied"):
            raise business(f"This {'invoice' if etype == 'Invoice' else 'credit memo'} has payments applied. "
                           "Delete or change the payments first.")
    elif etype == "Payment":
        events += _apply_payment(realm, existing, {}, now)
    del realm.entities[etype][existing["Id"]]
    realm.deleted.append((etype, existing["Id"], now))
    cust = realm.entities["Customer"].get(str(existing.get("CustomerRef", {}).get("value")))
    if cust:
        _recompute_customer_balance(realm, cust, now)
    events.append((etype, existing["Id"], "Delete", now))
    return etype, {"domain": "QBO", "status": "Deleted", "Id": existing["Id"]}, events


def void(realm: Realm, etype: str, body: Any, now: float,
         include: frozenset[str] = frozenset()) -> tuple[str, dict, list[Event]]:
    body = _body(body, etype)
    if etype not in ("Invoice", "Payment"):
        raise unsupported(f"Operation Void is not supported for {etype}.")
    if body.get("Id") in (None, ""):
        raise required("Id")
    obj = get_live(realm, etype, body["Id"])
    _check_sync(obj, body)
    events: list[Event] = []
    if etype == "Invoice":
        if obj.get("_applied"):
            raise business("This invoice has payments applied. Delete or change the payments first.")
        for line in obj["Line"]:
            line["Amount"] = ZERO
            detail = line.get("SalesItemLineDetail")
            if detail and "Qty" in detail:
                detail["Qty"] = ZERO
        obj["TotalAmt"] = ZERO
        obj["Balance"] = ZERO
        obj["TxnTaxDetail"] = {"TotalTax": ZERO}
    else:
        events += _apply_payment(realm, obj, {}, now)
        obj["TotalAmt"] = ZERO
        obj["UnappliedAmt"] = ZERO
        obj["Line"] = []
    note = obj.get("PrivateNote")
    obj["PrivateNote"] = f"Voided - {note}" if note and not note.startswith("Voided") else (note or "Voided")
    obj["_voided"] = True
    touch(obj, now)
    cust = realm.entities["Customer"].get(str(obj.get("CustomerRef", {}).get("value")))
    if cust:
        _recompute_customer_balance(realm, cust, now)
    events.append((etype, obj["Id"], "Void", now))
    return etype, obj, events


def read(realm: Realm, etype: str, oid: Any) -> dict:
    return get_live(realm, etype, oid)


def _body(body: Any, etype: str) -> dict:
    if not isinstance(body, dict):
        raise QBOError("2010", "Request has invalid or unsupported property",
                       f"Request body is not a valid {etype} object")
    return body


def _start(etype: str, existing: dict | None, body: dict, sparse: bool) -> dict:
    data = _clean_input(etype, body)
    if existing is None or not sparse:
        return data
    merged = copy.deepcopy(existing)
    for key in list(merged):
        if key in body and (body[key] is None or body[key] == "") and key not in READ_ONLY:
            merged.pop(key)  # sparse update with an explicit empty value clears the field
    merged.update(copy.deepcopy(data))
    return merged


def _finish(realm: Realm, etype: str, existing: dict | None, obj: dict, now: float) -> dict:
    """Give ``obj`` identity and metadata, store it."""
    if existing is None:
        obj["Id"] = realm.next_id(etype)
        obj["SyncToken"] = "0"
        _meta(obj, now, True)
    else:
        obj["Id"] = existing["Id"]
        obj["SyncToken"] = str(int(existing["SyncToken"]) + 1)
        obj["MetaData"] = dict(existing["MetaData"])
        obj["_created"] = existing.get("_created", now)
        for hidden in ("_applied", "_links", "_credits", "_voided"):
            if hidden in existing and hidden not in obj:
                obj[hidden] = existing[hidden]
        _meta(obj, now, False)
    realm.entities[etype][obj["Id"]] = obj
    return obj


def _ordered(obj: dict, head: list[str]) -> dict:
    out = {k: obj[k] for k in head if k in obj}
    out.update({k: v for k, v in obj.items() if k not in out})
    return out


def _name_taken(realm: Realm, etype: str, key: str, name: str, own_id: str | None) -> bool:
    low = name.lower()
    for oid, other in realm.entities[etype].items():
        if oid != own_id and str(other.get(key, "")).lower() == low:
            return True
    return False


# --------------------------------------------------------------------------- Account


def _account_write(realm: Realm, existing: dict | None, body: dict, now: float, sparse: bool):
    obj = _start("Account", existing, body, sparse)
    name = str(obj.get("Name", "")).strip()
    if not name:
        raise required("Name")
    if ":" in name:
        raise business("The account name cannot contain a colon (:).")
    own = existing["Id"] if existing else None
    if _name_taken(realm, "Account", "Name", name, own):
        raise duplicate_name("The name supplied already exists. : Another account is already using this name.")
    atype = obj.get("AccountType")
    if not atype:
        raise required("AccountType")
    obj["Name"] = name
    obj["FullyQualifiedName"] = name
    obj["SubAccount"] = False
    obj["Active"] = _bool(obj.get("Active"), True)
    obj["Classification"] = CLASSIFICATION.get(atype, "Asset")
    obj.setdefault("CurrentBalance", existing.get("CurrentBalance", 0) if existing else 0)
    obj.setdefault("CurrentBalanceWithSubAccounts", obj["CurrentBalance"])
    obj.setdefault("CurrencyRef", dict(USD))
    obj["domain"], obj["sparse"] = "QBO", False
    obj = _finish(realm, "Account", existing, obj, now)
    obj = _ordered(obj, ["Name", "SubAccount", "FullyQualifiedName", "Active", "Classification", "AccountType",
                         "AccountSubType", "CurrentBalance", "CurrentBalanceWithSubAccounts", "CurrencyRef",
                         "domain", "sparse", "Id", "SyncToken", "MetaData"])
    realm.entities["Account"][obj["Id"]] = obj
    return obj, [("Account", obj["Id"], "Create" if existing is None else "Update", now)]


# --------------------------------------------------------------------------- Customer


def _customer_write(realm: Realm, existing: dict | None, body: dict, now: float, sparse: bool):
    obj = _start("Customer", existing, body, sparse)
    display = str(obj.get("DisplayName", "")).strip()
    if not display:
        parts = [str(obj.get(k, "")).strip() for k in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
        display = " ".join(p for p in parts if p)
    if not display:
        raise required("DisplayName")
    if len(display) > 500:
        raise business("DisplayName is longer than 500 characters.")
    own = existing["Id"] if existing else None
    if _name_taken(realm, "Customer", "DisplayName", display, own):
        raise duplicate_name("The name supplied already exists. : Another customer, vendor or employee is "
                             "already using this name. Please use a different name.")
    obj["DisplayName"] = display
    obj.setdefault("PrintOnCheckName", display)
    fqn, level, job = display, 0, False
    parent_ref = obj.get("ParentRef")
    if parent_ref:
        parent = resolve_ref(realm, "Customer", parent_ref, "ParentRef")
        if own is not None and parent["Id"] == own:
            raise business("A customer cannot be its own parent.")
        obj["ParentRef"] = {"value": parent["Id"]}
        fqn, level, job = f"{parent['FullyQualifiedName']}:{display}", parent.get("Level", 0) + 1, True
    obj["FullyQualifiedName"] = fqn
    if level:
        obj["Level"] = level
    else:
        obj.pop("Level", None)
    obj["Job"] = job
    obj["Active"] = _bool(obj.get("Active"), True)
    obj["Taxable"] = _bool(obj.get("Taxable"), not obj.get("TaxExemptionReasonId"))
    obj["BillWithParent"] = _bool(obj.get("BillWithParent"), False)
    obj["Balance"] = existing.get("Balance", ZERO) if existing else ZERO
    obj["BalanceWithJobs"] = obj["Balance"]
    obj.setdefault("CurrencyRef", dict(USD))
    obj.setdefault("PreferredDeliveryMethod", "Print")
    obj["domain"], obj["sparse"] = "QBO", False
    obj = _finish(realm, "Customer", existing, obj, now)
    obj = _ordered(obj, ["Taxable", "BillAddr", "ShipAddr", "Job", "BillWithParent", "Balance", "BalanceWithJobs",
                         "CurrencyRef", "PreferredDeliveryMethod", "domain", "sparse", "Id", "SyncToken",
                         "MetaData", "Title", "GivenName", "MiddleName", "FamilyName", "Suffix",
                         "FullyQualifiedName", "CompanyName", "DisplayName", "PrintOnCheckName", "Active"])
    realm.entities["Customer"][obj["Id"]] = obj
    if existing is not None and existing["DisplayName"] != display:
        _rename_refs(realm, "CustomerRef", obj["Id"], display)
    return obj, [("Customer", obj["Id"], "Create" if existing is None else "Update", now)]


def _rename_refs(realm: Realm, ref_key: str, oid: str, name: str) -> None:
    for etype in ("Invoice", "Payment", "CreditMemo", "RefundReceipt"):
        for txn in realm.entities[etype].values():
            ref = txn.get(ref_key)
            if ref and ref.get("value") == oid:
                ref["name"] = name


def merge_customer(realm: Realm, from_id: Any, into_id: Any, now: float) -> tuple[str, dict, list[tuple]]:
    """What the accountant's merge does (UI only in QBO; FACTS §12.4): every transaction of ``from_id`` moves to
    ``into_id`` (CustomerRef changes, SyncToken and LastUpdatedTime move), ``from_id`` is deleted (gone from reads
    and queries, a ``status:"Deleted"`` stub in CDC), and one webhook ``Merge`` names the survivor with the
    merged-away id as ``deletedId``. Customers with sub-customers cannot be merged."""
    lost, keep = get_live(realm, "Customer", from_id), get_live(realm, "Customer", into_id)
    if lost["Id"] == keep["Id"]:
        raise business("A customer cannot be merged into itself.")
    for cust in realm.entities["Customer"].values():
        if (cust.get("ParentRef") or {}).get("value") in (lost["Id"], keep["Id"]):
            raise business("Customers with sub-customers or projects cannot be merged.")
    events: list[tuple] = []
    for etype in ("Invoice", "Payment", "CreditMemo", "RefundReceipt"):
        for txn in realm.entities[etype].values():
            if (txn.get("CustomerRef") or {}).get("value") == lost["Id"]:
                txn["CustomerRef"] = ref_to(keep)
                touch(txn, now)
                events.append((etype, txn["Id"], "Update", now))
    del realm.entities["Customer"][lost["Id"]]
    realm.deleted.append(("Customer", lost["Id"], now))
    _recompute_customer_balance(realm, keep, now)
    touch(keep, now, bump=False)
    events.insert(0, ("Customer", keep["Id"], "Merge", now, lost["Id"]))
    return "Customer", keep, events


# --------------------------------------------------------------------------- Item

ITEM_TYPES = ("Service", "NonInventory", "Inventory")


def _item_write(realm: Realm, existing: dict | None, body: dict, now: float, sparse: bool):
    obj = _start("Item", existing, body, sparse)
    name = str(obj.get("Name", "")).strip()
    if not name:
        raise required("Name")
    if len(name) > 100:
        raise business("Name is longer than 100 characters.")
    own = existing["Id"] if existing else None
    if _name_taken(realm, "Item", "Name", name, own):
        raise duplicate_name("The name supplied already exists. : Another product or service is already using "
                             "this name. Please use a different name.")
    itype = obj.get("Type") or "Service"
    if itype not in ITEM_TYPES:
        raise business(f"Item type {itype} is not supported by the sandbox.")
    if existing is not None and existing.get("Type") == "Inventory" and itype != "Inventory":
        raise business("You can't change the type of an inventory item.")
    acc = resolve_ref(realm, "Account", obj.get("IncomeAccountRef"), "IncomeAccountRef")
    obj["IncomeAccountRef"] = {"value": acc["Id"], "name": acc["Name"]}
    if itype == "Inventory":
        for key in ("ExpenseAccountRef", "AssetAccountRef"):
            ref_acc = resolve_ref(realm, "Account", obj.get(key), key)
            obj[key] = {"value": ref_acc["Id"], "name": ref_acc["Name"]}
        if not obj.get("InvStartDate"):
            raise required("InvStartDate")
        obj["TrackQtyOnHand"] = True
        obj["QtyOnHand"] = to_decimal(obj.get("QtyOnHand")) or ZERO
    for key in ("UnitPrice", "PurchaseCost"):
        if key in obj:
            try:
                obj[key] = to_decimal(obj[key]) or ZERO
            except ValueError:
                raise business(f"{key} must be a number.") from None
    obj["Name"] = name
    obj["FullyQualifiedName"] = name
    obj["Type"] = itype
    if "Taxable" in obj:  # absent unless sent, like the recorded service-item create (and then not taxable)
        obj["Taxable"] = _bool(obj["Taxable"], False)
    obj["Active"] = _bool(obj.get("Active"), True)
    obj["domain"], obj["sparse"] = "QBO", False
    obj = _finish(realm, "Item", existing, obj, now)
    obj = _ordered(obj, ["FullyQualifiedName", "domain", "Name", "SyncToken", "sparse", "Active", "Type", "Id",
                         "MetaData"])
    realm.entities["Item"][obj["Id"]] = obj
    return obj, [("Item", obj["Id"], "Create" if existing is None else "Update", now)]


# --------------------------------------------------------------------------- Invoice


def _lines(realm: Realm, raw_lines: Any) -> tuple[list[dict], Decimal]:
    if not isinstance(raw_lines, list) or not raw_lines:
        raise required("Line")
    out: list[dict] = []
    subtotal = ZERO
    discounts: list[dict] = []
    n = 0
    for raw in raw_lines:
        if not isinstance(raw, dict):
            raise business("Line must be an object.")
        dtype = raw.get("DetailType")
        if dtype == "SubTotalLineDetail":
            continue  # recomputed by the server
        try:
            amount = to_decimal(raw.get("Amount"))
        except ValueError:
            raise business("Line Amount must be a number.") from None
        if dtype == "SalesItemLineDetail":
            d = raw.get("SalesItemLineDetail") or {}
            item = resolve_ref(realm, "Item", d.get("ItemRef"), "ItemRef")
            try:
                qty, price = to_decimal(d.get("Qty")), to_decimal(d.get("UnitPrice"))
            except ValueError:
                raise business("Qty and UnitPrice must be numbers.") from None
            if qty == 0 and price == 0:  # clients that send zero defaults
                qty = price = None
            if amount is None:
                if qty is None or price is None:
                    raise required("Amount")
                amount = money(qty * price)
            elif qty is not None and price is not None:
                if abs(money(qty * price) - money(amount)) > Decimal("0.01"):
                    raise business(f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}")
            elif qty not in (None, ZERO) and price is None:
                price = (amount / qty).quantize(Decimal("0.0000001")).normalize()
            n += 1
            detail: dict[str, Any] = {"ItemRef": {"value": item["Id"], "name": item["Name"]}}
            if price is not None:
                detail["UnitPrice"] = price
            if qty is not None:
                detail["Qty"] = qty
            detail["ItemAccountRef"] = dict(item.get("IncomeAccountRef") or {})
            detail["TaxCodeRef"] = tax.line_code(d.get("TaxCodeRef"), item.get("Taxable") is True)
            if d.get("ServiceDate"):
                detail["ServiceDate"] = _parse_date(d["ServiceDate"], "ServiceDate")
            line: dict[str, Any] = {"Id": str(n), "LineNum": n}
            if raw.get("Description"):
                line["Description"] = raw["Description"]
            line.update({"Amount": money(amount), "DetailType": dtype, "SalesItemLineDetail": detail})
            subtotal += money(amount)
            out.append(line)
        elif dtype in ("DescriptionOnly", "DescriptionLineDetail"):
            n += 1
            line = {"Id": str(n), "LineNum": n, "Description": raw.get("Description", ""),
                    "DetailType": "DescriptionOnly",
                    "DescriptionLineDetail": raw.get("DescriptionLineDetail") or {}}
            if amount:
                line["Amount"] = money(amount)
            out.append(line)
        elif dtype == "DiscountLineDetail":
            d = raw.get("DiscountLineDetail") or {}
            discounts.append({"amount": amount, "detail": d, "raw": raw})
        else:
            raise QBOError("2010", "Request has invalid or unsupported property",
                           f"Property Name:DetailType specified is unsupported or invalid: {dtype}")
    if not out:
        raise required("Line")
    total = subtotal
    for disc in discounts:
        d = disc["detail"]
        if _bool(d.get("PercentBased"), False):
            pct = to_decimal(d.get("DiscountPercent")) or ZERO
            amt = money(subtotal * pct / 100)
        else:
            amt = money(disc["amount"] or ZERO)
        n += 1
        line = {"Id": str(n), "LineNum": n, "Amount": amt, "DetailType": "DiscountLineDetail",
                "DiscountLineDetail": d}
        out.append(line)
        total -= amt
    out.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    return out, money(total)


def _invoice_write(realm: Realm, existing: dict | None, body: dict, now: float, sparse: bool,
                   include: frozenset[str] = frozenset()):
    if existing is not None and existing.get("_voided"):
        raise business("A voided transaction cannot be changed.")
    obj = _start("Invoice", existing, body, sparse)
    cust = resolve_ref(realm, "Customer", obj.get("CustomerRef"), "CustomerRef")
    lines, total = _lines(realm, obj.get("Line") if (not sparse or "Line" in body) else _strip_sub(obj["Line"]))
    tax_detail, total_tax = tax.compute(realm, realm.opt("tax_model"), obj, cust, lines, total)
    total += total_tax
    applied = sum((existing or {}).get("_applied", {}).values(), ZERO)
    balance = total - applied
    if balance < 0:
        raise business("The invoice total would be less than the payments already applied to it.")
    txn_date = _parse_date(obj["TxnDate"], "TxnDate") if obj.get("TxnDate") else company_date(now)
    due = (_parse_date(obj["DueDate"], "DueDate") if obj.get("DueDate")
           else (date.fromisoformat(txn_date) + timedelta(days=30)).isoformat())
    doc = _doc_number(realm, existing, obj, sparse, include)
    out: dict[str, Any] = {
        "AllowIPNPayment": _bool(obj.get("AllowIPNPayment"), False),
        "AllowOnlinePayment": _bool(obj.get("AllowOnlinePayment"), False),
        "AllowOnlineCreditCardPayment": _bool(obj.get("AllowOnlineCreditCardPayment"), False),
        "AllowOnlineACHPayment": _bool(obj.get("AllowOnlineACHPayment"), False),
        "domain": "QBO", "sparse": False,
        "DocNumber": doc, "TxnDate": txn_date, "CurrencyRef": obj.get("CurrencyRef") or dict(USD),
    }
    if obj.get("PrivateNote"):
        out["PrivateNote"] = obj["PrivateNote"]
    out["LinkedTxn"] = [{"TxnId": pid, "TxnType": "Payment"} for pid in (existing or {}).get("_applied", {})]
    out["Line"] = lines
    out["TxnTaxDetail"] = tax_detail
    out["CustomerRef"] = ref_to(cust)
    for key in ("CustomerMemo", "BillEmail", "BillEmailCc", "BillEmailBcc", "SalesTermRef", "ShipDate",
                "TrackingNum", "ShipMethodRef", "DepartmentRef", "ClassRef", "CustomField", "PONumber"):
        if key in obj:
            out[key] = obj[key]
    bill = obj.get("BillAddr") or cust.get("BillAddr")
    ship = obj.get("ShipAddr") or cust.get("ShipAddr")
    if bill:
        out["BillAddr"] = bill
    if ship:
        out["ShipAddr"] = ship
    out["DueDate"] = due
    out["TotalAmt"] = total
    out["ApplyTaxAfterDiscount"] = _bool(obj.get("ApplyTaxAfterDiscount"), False)
    out["PrintStatus"] = obj.get("PrintStatus") or "NeedToPrint"
    email_status = obj.get("EmailStatus") or "NotSet"
    if email_status == "NeedToSend" and not (obj.get("BillEmail") or {}).get("Address"):
        raise business("Need to send email requires a BillEmail address.")
    out["EmailStatus"] = email_status
    out["Balance"] = balance
    if out["DocNumber"] is None:
        del out["DocNumber"]  # custom numbers on and none sent: QBO leaves it empty
    out = _finish(realm, "Invoice", existing, out, now)
    out = _ordered(out, ["AllowIPNPayment", "AllowOnlinePayment", "AllowOnlineCreditCardPayment",
                         "AllowOnlineACHPayment", "domain", "sparse", "Id", "SyncToken", "MetaData"])
    realm.entities["Invoice"][out["Id"]] = out
    _recompute_customer_balance(realm, cust, now)
    if existing is not None and existing["CustomerRef"]["value"] != cust["Id"]:
        old = realm.entities["Customer"].get(existing["CustomerRef"]["value"])
        if old:
            _recompute_customer_balance(realm, old, now)
    return out, [("Invoice", out["Id"], "Create" if existing is None else "Update", now)]


def _doc_number(realm: Realm, existing: dict | None, obj: dict, sparse: bool,
                include: frozenset[str]) -> str | None:
    """The company's "custom transaction numbers" preference (realm option ``custom_txn_numbers``):

    * ``None`` (the sandbox's default, lenient): a sent number is kept, an omitted one is assigned, no
      uniqueness check;
    * ``True`` (on): a sent number is kept, an omitted one stays empty, and a number another invoice already
      has is refused with 6140 unless the request carries ``include=allowduplicatedocnum``;
    * ``False`` (off): QBO numbers invoices itself; a sent number is ignored (an update keeps its number).

    ``DocNumber: "AUTO_GENERATE"`` takes the next number whatever the preference.
    """
    pref = realm.opt("custom_txn_numbers")
    sent = obj.get("DocNumber")
    if pref is False or sent == "AUTO_GENERATE":  # Intuit's SDK reference: AUTO_GENERATE forces the next number
        if existing is not None and sent != "AUTO_GENERATE":
            return existing.get("DocNumber")
        realm.doc_number += 1
        return str(realm.doc_number)
    if sent is None:
        if existing is not None and sparse:
            return existing.get("DocNumber")
        if pref is True:
            return None
        realm.doc_number += 1
        return str(realm.doc_number)
    doc = str(sent)
    if len(doc) > 21:
        raise business("DocNumber is longer than 21 characters.")
    unchanged = existing is not None and existing.get("DocNumber") == doc  # an update keeping its number
    if pref is True and "allowduplicatedocnum" not in include and not unchanged:
        own = existing["Id"] if existing else None
        for etype, label in (("Invoice", "Invoice"), ("CreditMemo", "Credit Memo"),
                             ("RefundReceipt", "Refund Receipt")):  # numbers clash across sales forms
            for other in realm.entities[etype].values():
                if (etype, other["Id"]) != ("Invoice", own) and other.get("DocNumber") == doc:
                    raise QBOError("6140", "Duplicate Document Number Error",
                                   "Duplicate Document Number Error : You must specify a different number. This "
                                   f"number has already been used. DocNumber={doc} is assigned to TxnType={label} "
                                   f"with TxnId={other['Id']}", element="")
    return doc


def _strip_sub(lines: list[dict]) -> list[dict]:
    return [ln for ln in lines if ln.get("DetailType") != "SubTotalLineDetail"]


def _recompute_customer_balance(realm: Realm, cust: dict, now: float) -> None:
    """Customer.Balance = open invoice balances - unapplied payments (LastUpdatedTime moves, SyncToken not)."""
    cid = cust["Id"]
    bal = ZERO
    for inv in realm.entities["Invoice"].values():
        if inv["CustomerRef"]["value"] == cid:
            bal += inv["Balance"]
    for pay in realm.entities["Payment"].values():
        if pay["CustomerRef"]["value"] == cid:
            bal -= pay.get("UnappliedAmt", ZERO)
    for memo in realm.entities["CreditMemo"].values():
        if memo["CustomerRef"]["value"] == cid:
            bal -= memo.get("RemainingCredit", ZERO)
    if cust.get("Balance") != bal:
        cust["Balance"] = bal
        cust["BalanceWithJobs"] = bal
        touch(cust, now, bump=False)


# --------------------------------------------------------------------------- Payment


def _payment_write(realm: Realm, existing: dict | None, body: dict, now: float, sparse: bool):
    if existing is not None and existing.get("_voided"):
        raise business("A voided transaction cannot be changed.")
    obj = _start("Payment", existing, body, sparse)
    cust = resolve_ref(realm, "Customer", obj.get("CustomerRef"), "CustomerRef")
    if obj.get("TotalAmt") in (None, ""):
        raise required("TotalAmt")
    try:
        total = money(to_decimal(obj["TotalAmt"]))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise business("TotalAmt must be a number.") from None
    if total < 0:
        raise business("TotalAmt cannot be negative.")
    raw_lines = obj.get("Line") or []
    if not isinstance(raw_lines, list):
        raise business("Line must be a list.")
    # A line's Amount counts for every transaction it links: one line linking a CreditMemo and an Invoice
    # applies that much credit to that invoice (QBO accepts that shape and the one-line-each shape).
    links: dict[str, Decimal] = {}
    credits: dict[str, Decimal] = {}
    out_lines = []
    for raw in raw_lines:
        try:
            amount = money(to_decimal(raw.get("Amount")) or ZERO)
        except (ValueError, AttributeError):
            raise business("Line Amount must be a number.") from None
        if amount < 0:
            raise QBOError("2240", "Business Validation Error", "Line Amount cannot be negative.")
        linked = raw.get("LinkedTxn") or []
        if not linked:
            raise required("LinkedTxn")
        for lt in linked:
            ttype = lt.get("TxnType")
            if ttype not in ("Invoice", "CreditMemo"):
                raise business(f"Linking a payment to {ttype} is not supported by the sandbox.")
            txn = realm.entities[ttype].get(str(lt.get("TxnId", "")).strip())
            if txn is None:
                raise not_found()
            if txn["CustomerRef"]["value"] != cust["Id"]:
                raise business("The transaction you linked belongs to a different customer.")
            target = links if ttype == "Invoice" else credits
            target[txn["Id"]] = target.get(txn["Id"], ZERO) + amount
        out_lines.append({"Amount": amount, "LinkedTxn": [{"TxnId": str(lt["TxnId"]), "TxnType": lt["TxnType"]}
                                                          for lt in linked]})
    invoiced_total = sum(links.values(), ZERO)
    credit_total = sum(credits.values(), ZERO)
    if credit_total > invoiced_total:
        raise business("The credit applied is more than the amount applied to invoices.")
    applied_total = invoiced_total - credit_total  # the part of the invoices paid with this payment's money
    if applied_total > total:
        raise business("The amount applied to transactions is more than the payment amount.")
    old_links = (existing or {}).get("_links", {})
    for inv_id, amt in links.items():
        inv = realm.entities["Invoice"][inv_id]
        available = inv["Balance"] + old_links.get(inv_id, ZERO)
        if amt > available:
            raise business(f"The payment amount applied to invoice {inv.get('DocNumber')} is more than its "
                           f"open balance ({available}).")
    old_credits = (existing or {}).get("_credits", {})
    for memo_id, amt in credits.items():
        memo = realm.entities["CreditMemo"][memo_id]
        available = memo["RemainingCredit"] + old_credits.get(memo_id, ZERO)
        if amt > available:
            raise business(f"The credit applied from credit memo {memo.get('DocNumber')} is more than its "
                           f"remaining credit ({available}).")
    dep = obj.get("DepositToAccountRef")
    if dep:
        acc = resolve_ref(realm, "Account", dep, "DepositToAccountRef")
        dep = {"value": acc["Id"], "name": acc["Name"]}
    else:
        acc = _account_by_subtype(realm, "UndepositedFunds")
        dep = {"value": acc["Id"], "name": acc["Name"]} if acc else None
    out: dict[str, Any] = {"CustomerRef": ref_to(cust)}
    if dep:
        out["DepositToAccountRef"] = dep
    for key in ("PaymentMethodRef", "PaymentRefNum", "PrivateNote", "CreditCardPayment", "ARAccountRef"):
        if key in obj:
            out[key] = obj[key]
    out["TotalAmt"] = total
    out["UnappliedAmt"] = total - applied_total
    out["ProcessPayment"] = _bool(obj.get("ProcessPayment"), False)
    out["domain"], out["sparse"] = "QBO", False
    out["TxnDate"] = _parse_date(obj["TxnDate"], "TxnDate") if obj.get("TxnDate") else company_date(now)
    out["CurrencyRef"] = obj.get("CurrencyRef") or dict(USD)
    out["Line"] = out_lines
    out = _finish(realm, "Payment", existing, out, now)
    out = _ordered(out, ["CustomerRef", "DepositToAccountRef", "PaymentMethodRef", "PaymentRefNum", "TotalAmt",
                         "UnappliedAmt", "ProcessPayment", "domain", "sparse", "Id", "SyncToken", "MetaData"])
    realm.entities["Payment"][out["Id"]] = out
    events = _apply_payment(realm, out, links, now, credits)
    if existing is not None and existing["CustomerRef"]["value"] != cust["Id"]:
        old = realm.entities["Customer"].get(existing["CustomerRef"]["value"])
        if old:
            _recompute_customer_balance(realm, old, now)
    _recompute_customer_balance(realm, cust, now)
    events.append(("Payment", out["Id"], "Create" if existing is None else "Update", now))
    return out, events


def _apply_payment(realm: Realm, payment: dict, links: dict[str, Decimal], now: float,
                   credits: dict[str, Decimal] | None = None) -> list[Event]:
    """Move the payment's applications to ``links`` (invoices) and ``credits`` (credit memos used); touched
    invoices get Balance/LinkedTxn/SyncToken, touched credit memos RemainingCredit/Balance/SyncToken. An invoice
    lists the payment, never the credit memo (QBO's LinkedTxn types for an Invoice)."""
    pid = payment["Id"]
    credits = credits or {}
    old_credits = payment.get("_credits", {})
    events: list[Event] = []
    for memo_id in sorted(set(old_credits) | set(credits), key=int):
        memo = realm.entities["CreditMemo"].get(memo_id)
        if memo is None or old_credits.get(memo_id) == credits.get(memo_id):
            continue
        used = dict(memo.get("_applied", {}))
        if memo_id in credits:
            used[pid] = credits[memo_id]
        else:
            used.pop(pid, None)
        memo["_applied"] = used
        memo["RemainingCredit"] = memo["TotalAmt"] - sum(used.values(), ZERO)
        memo["Balance"] = memo["RemainingCredit"]
        touch(memo, now)
        events.append(("CreditMemo", memo_id, "Update", now))
    payment["_credits"] = dict(credits)
    old = payment.get("_links", {})
    for inv_id in sorted(set(old) | set(links), key=int):
        inv = realm.entities["Invoice"].get(inv_id)
        if inv is None or old.get(inv_id) == links.get(inv_id):
            continue
        applied = dict(inv.get("_applied", {}))
        if inv_id in links:
            applied[pid] = links[inv_id]
        else:
            applied.pop(pid, None)
        inv["_applied"] = applied
        inv["Balance"] = inv["TotalAmt"] - sum(applied.values(), ZERO)
        inv["LinkedTxn"] = [{"TxnId": p, "TxnType": "Payment"} for p in applied]
        touch(inv, now)
        events.append(("Invoice", inv_id, "Update", now))
    payment["_links"] = dict(links)
    return events


# --------------------------------------------------------------------------- CreditMemo, RefundReceipt


def _sales_form_write(realm: Realm, etype: str, existing: dict | None, body: dict, now: float, sparse: bool):
    """CreditMemo and RefundReceipt: sales lines like an invoice's, TotalAmt computed (a sent one is ignored),
    sales tax as on an invoice (the realm's tax model).

    A credit memo starts with ``Balance`` = ``RemainingCredit`` = ``TotalAmt``; payments that use it lower both.
    A refund receipt is cash paid back to the customer: ``Balance`` 0, it links to nothing and lowers no
    invoice's balance; ``DepositToAccountRef`` (the account the money leaves) is required.
    """
    if existing is not None and existing.get("_voided"):
        raise business("A voided transaction cannot be changed.")
    obj = _start(etype, existing, body, sparse)
    if etype == "CreditMemo" or obj.get("CustomerRef"):
        cust = resolve_ref(realm, "Customer", obj.get("CustomerRef"), "CustomerRef")
    else:
        cust = None
    lines, total = _lines(realm, obj.get("Line") if (not sparse or "Line" in body) else _strip_sub(obj["Line"]))
    tax_detail, total_tax = tax.compute(realm, realm.opt("tax_model"), obj, cust or {}, lines, total)
    total += total_tax
    used = sum((existing or {}).get("_applied", {}).values(), ZERO)
    if total < used:
        raise business("The credit memo total would be less than the credit already used.")
    doc = obj.get("DocNumber")
    if doc is None:
        if existing is not None:
            doc = existing.get("DocNumber")
        else:
            realm.doc_number += 1
            doc = str(realm.doc_number)
    if len(str(doc)) > 21:
        raise business("DocNumber is longer than 21 characters.")
    out: dict[str, Any] = {"domain": "QBO", "sparse": False, "DocNumber": str(doc),
                           "TxnDate": _parse_date(obj["TxnDate"], "TxnDate") if obj.get("TxnDate")
                           else company_date(now), "CurrencyRef": obj.get("CurrencyRef") or dict(USD)}
    for key in ("PrivateNote", "CustomerMemo", "BillEmail", "BillAddr", "ShipAddr", "PaymentRefNum",
                "PaymentMethodRef", "PaymentType", "CheckPayment", "CreditCardPayment", "ClassRef",
                "DepartmentRef"):
        if key in obj:
            out[key] = obj[key]
    if cust is not None:
        out["CustomerRef"] = ref_to(cust)
    out["Line"] = lines
    out["TxnTaxDetail"] = tax_detail
    out["TotalAmt"] = total
    if etype == "CreditMemo":
        out["RemainingCredit"] = total - used
        out["Balance"] = out["RemainingCredit"]
    else:
        dep = obj.get("DepositToAccountRef")
        if not dep:
            raise required("DepositToAccountRef")
        acc = resolve_ref(realm, "Account", dep, "DepositToAccountRef")
        if acc.get("AccountType") not in ("Bank", "Other Current Asset"):
            raise business("DepositToAccountRef must be a Bank or Other Current Asset account.")
        out["DepositToAccountRef"] = {"value": acc["Id"], "name": acc["Name"]}
        out["Balance"] = ZERO
    out["PrintStatus"] = obj.get("PrintStatus") or "NotSet"
    out = _finish(realm, etype, existing, out, now)
    out = _ordered(out, ["domain", "sparse", "Id", "SyncToken", "MetaData"])
    realm.entities[etype][out["Id"]] = out
    for cid in {c for c in ((cust or {}).get("Id"), ((existing or {}).get("CustomerRef") or {}).get("value")) if c}:
        customer = realm.entities["Customer"].get(cid)
        if customer:
            _recompute_customer_balance(realm, customer, now)
    return out, [(etype, out["Id"], "Create" if existing is None else "Update", now)]


def _credit_memo_write(realm: Realm, existing: dict | None, body: dict, now: float, sparse: bool):
    return _sales_form_write(realm, "CreditMemo", existing, body, now, sparse)


def _refund_receipt_write(realm: Realm, existing: dict | None, body: dict, now: float, sparse: bool):
    return _sales_form_write(realm, "RefundReceipt", existing, body, now, sparse)


_WRITERS = {
    "Account": _account_write,
    "Customer": _customer_write,
    "Item": _item_write,
    "Invoice": _invoice_write,
    "Payment": _payment_write,
    "CreditMemo": _credit_memo_write,
    "RefundReceipt": _refund_receipt_write,
}


# --------------------------------------------------------------------------- starter data


def starter_data(realm: Realm, now: float) -> None:
    """A few customers, items, invoices and payments, like Intuit's sandbox company."""
    inc = income_account(realm)["Id"]
    customers = [
        {"DisplayName": "Amy's Bird Sanctuary", "GivenName": "Amy", "FamilyName": "Lauterbach",
         "CompanyName": "Amy's Bird Sanctuary", "PrimaryEmailAddr": {"Address": "Birds@Intuit.com"},
         "PrimaryPhone": {"FreeFormNumber": "(650) 555-3311"},
         "BillAddr": {"Line1": "4581 Finch St.", "City": "Bayshore", "CountrySubDivisionCode": "CA",
                      "PostalCode": "94326"}},
        {"DisplayName": "Bill's Windsurf Shop", "CompanyName": "Bill's Windsurf Shop",
         "PrimaryEmailAddr": {"Address": "Surf@Intuit.com"}},
        {"DisplayName": "Cool Cars", "CompanyName": "Cool Cars",
         "PrimaryEmailAddr": {"Address": "Cool_Cars@intuit.com"}},
        {"DisplayName": "Dylan Sollfrank", "GivenName": "Dylan", "FamilyName": "Sollfrank"},
    ]
    for c in customers:
        _customer_write(realm, None, c, now, False)
    items = [("Services", "25"), ("Gardening", "25"), ("Design", "75"), ("Installation", "50")]
    for name, price in items:
        _item_write(realm, None, {"Name": name, "Type": "Service", "UnitPrice": Decimal(price),
                                  "IncomeAccountRef": {"value": inc}}, now, False)
    inv1, _ = _invoice_write(realm, None, {"CustomerRef": {"value": "1"}, "Line": [
        {"Amount": Decimal("100.00"), "DetailType": "SalesItemLineDetail", "Description": "Weekly Gardening Service",
         "SalesItemLineDetail": {"ItemRef": {"value": "2"}, "Qty": 4, "UnitPrice": 25}}]}, now, False)
    inv2, _ = _invoice_write(realm, None, {"CustomerRef": {"value": "1"}, "Line": [
        {"Amount": Decimal("337.50"), "DetailType": "SalesItemLineDetail", "Description": "Custom Design",
         "SalesItemLineDetail": {"ItemRef": {"value": "3"}, "Qty": Decimal("4.5"), "UnitPrice": 75}}]}, now, False)
    _invoice_write(realm, None, {"CustomerRef": {"value": "2"}, "Line": [
        {"Amount": Decimal("250.00"), "DetailType": "SalesItemLineDetail",
         "SalesItemLineDetail": {"ItemRef": {"value": "4"}, "Qty": 5, "UnitPrice": 50}}]}, now, False)
    _payment_write(realm, None, {"CustomerRef": {"value": "1"}, "TotalAmt": Decimal("100.00"), "Line": [
        {"Amount": Decimal("100.00"), "LinkedTxn": [{"TxnId": inv1["Id"], "TxnType": "Invoice"}]}]}, now, False)
    _payment_write(realm, None, {"CustomerRef": {"value": "1"}, "TotalAmt": Decimal("200.00"), "Line": [
        {"Amount": Decimal("200.00"), "LinkedTxn": [{"TxnId": inv2["Id"], "TxnType": "Invoice"}]}]}, now, False)
