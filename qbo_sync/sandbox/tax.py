"""US sales tax as QBO computes it: TaxCode/TaxRate entities, a per-state rate table and ``TxnTaxDetail``.

Tax models (realm option ``tax_model``):

* ``none`` - the company does not charge sales tax: ``TxnTaxDetail`` is always ``{"TotalTax": 0}``.
* ``automated`` - QBO's Automated Sales Tax: the engine picks the tax code from the destination state (the
  invoice's or customer's ShipAddr, then BillAddr, then the company address), taxes the lines flagged ``TAX``
  unless the customer is exempt (``Taxable: false``), and ignores any ``TxnTaxCodeRef`` the request sends.
* ``manual`` - the pre-2017 US model: tax is charged only with the code named in ``TxnTaxDetail.TxnTaxCodeRef``
  (required once a line is taxable); the customer's ``Taxable`` flag does not block it.

Every function runs with ``realm.lock`` held by the caller.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .store import Realm
from .util import QBOError, fmt_meta, required, to_decimal

TAX_MODELS = ("none", "automated", "manual")
PSEUDO_CODES = ("TAX", "NON")  # line-level taxability in US companies
CENT = Decimal("0.01")
ZERO = Decimal("0")
# a new company's rate table (like Intuit's US sandbox company: "California" 8 %, "Tucson" = AZ 7.1 % + city 2 %)
DEFAULT_RATES: dict[str, Any] = {
    "CA": {"name": "California", "rates": [["California", 8]]},
    "AZ": {"name": "Tucson", "rates": [["AZ State tax", 7.1], ["Tucson City", 2]]},
}


def check_model(value: Any) -> str:
    model = str(value or "none").strip().lower()
    if model not in TAX_MODELS:
        raise ValueError(f"tax_model must be one of {', '.join(TAX_MODELS)}, not {value!r}")
    return model


def parse_rates(table: Any) -> dict[str, tuple[str, list[tuple[str, Decimal]]]]:
    """``{"CA": 8.25, "NY": [4, 4.5], "AZ": [["AZ State tax", 7.1], ["Tucson City", 2]],
    "WA": {"name": "Seattle", "rates": [...]}}`` -> ``{state: (code name, [(rate name, percent)])}``."""
    if not isinstance(table, dict):
        raise ValueError("the tax rate table must map state codes to rates")
    out: dict[str, tuple[str, list[tuple[str, Decimal]]]] = {}
    for state, spec in table.items():
        st = str(state).strip().upper()
        if not st:
            raise ValueError("empty state code in the tax rate table")
        name = st
        if isinstance(spec, dict):
            name = str(spec.get("name") or st)
            spec = spec.get("rates")
        if not isinstance(spec, list | tuple):
            spec = [spec]
        rates: list[tuple[str, Decimal]] = []
        for i, part in enumerate(spec, 1):
            if isinstance(part, list | tuple):
                rname, value = str(part[0]), part[1]
            else:
                rname, value = (st if len(spec) == 1 else f"{st} rate {i}"), part
            try:
                pct = to_decimal(value)
            except ValueError:
                pct = None
            if pct is None or not pct.is_finite() or not ZERO <= pct <= 100:
                raise ValueError(f"tax rate for {st} must be a percentage between 0 and 100, not {value!r}")
            rates.append((rname, pct))
        if not rates:
            raise ValueError(f"no rates for {st}")
        out[st] = (name, rates)
    return out


def parse_rates_arg(values: list[str]) -> dict[str, Any]:
    """CLI form: ``["CA=8.25", "AZ=7.1+2"]`` -> ``{"CA": ["8.25"], "AZ": ["7.1", "2"]}``."""
    table: dict[str, Any] = {}
    for text in values:
        state, sep, rates = text.partition("=")
        if not sep or not state.strip() or not rates.strip():
            raise ValueError(f"--tax-rate wants STATE=PERCENT[+PERCENT...], not {text!r}")
        table[state.strip().upper()] = [r.strip() for r in rates.split("+")]
    parse_rates(table)  # validate
    return table


def _stamp(obj: dict, now: float, create: bool) -> None:
    stamp = fmt_meta(now)
    if create:
        obj["MetaData"] = {"CreateTime": stamp, "LastUpdatedTime": stamp}
        obj["_created"] = now
    else:
        obj["SyncToken"] = str(int(obj["SyncToken"]) + 1)
        obj["MetaData"] = {"CreateTime": obj["MetaData"]["CreateTime"], "LastUpdatedTime": stamp}
    obj["_upd"] = now


def bootstrap(realm: Realm, now: float) -> None:
    """The company's Preferences, the pseudo codes TAX/NON and the default rate table (once per company)."""
    refresh_preferences(realm, now)
    codes = realm.entities["TaxCode"]
    if codes:
        return
    stamp = fmt_meta(now)
    for code, taxable in (("TAX", True), ("NON", False)):
        codes[code] = {"TaxGroup": False, "Name": code, "Taxable": taxable, "Description": code, "Id": code,
                       "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}, "_upd": now}
    set_rates(realm, DEFAULT_RATES, now)


def set_rates(realm: Realm, table: Any, now: float) -> dict[str, str]:
    """Replace the company's per-state rate table; returns ``{state: TaxCode Id}``.

    A state keeps its TaxCode (SyncToken +1 when its rates change); rates are TaxRate entities, reused when
    name and value match; states left out of the table get their code deactivated (``Active: false``)."""
    parsed = parse_rates(table)
    if not realm.entities["TaxCode"]:
        bootstrap(realm, now)
    rates = realm.entities["TaxRate"]
    codes = realm.entities["TaxCode"]
    out: dict[str, str] = {}
    for st, (cname, parts) in parsed.items():
        details = []
        for rname, pct in parts:
            rate = next((r for r in rates.values() if r["Name"] == rname and r["RateValue"] == pct), None)
            if rate is None:
                rate = {"Name": rname, "Description": "Sales Tax", "Active": True, "RateValue": pct,
                        "AgencyRef": {"value": "1"}, "SpecialTaxType": "NONE", "DisplayType": "ReadOnly",
                        "domain": "QBO", "sparse": False, "Id": realm.next_id("TaxRate"), "SyncToken": "0"}
                _stamp(rate, now, True)
                rates[rate["Id"]] = rate
            details.append({"TaxRateRef": {"value": rate["Id"], "name": rname},
                            "TaxTypeApplicable": "TaxOnAmount", "TaxOrder": 0})
        code = next((c for c in codes.values() if c.get("_state") == st), None)
        body = {"Name": cname, "Description": cname, "Active": True, "Taxable": True, "TaxGroup": True,
                "SalesTaxRateList": {"TaxRateDetail": details}, "PurchaseTaxRateList": {"TaxRateDetail": []},
                "domain": "QBO", "sparse": False}
        if code is None:
            code = {**body, "Id": realm.next_id("TaxCode"), "SyncToken": "0", "_state": st}
            _stamp(code, now, True)
            codes[code["Id"]] = code
        elif any(code.get(k) != v for k, v in body.items()):
            code.update(body)
            _stamp(code, now, False)
        out[st] = code["Id"]
    for code in codes.values():
        if code.get("_state") and code["_state"] not in parsed and code.get("Active"):
            code["Active"] = False
            _stamp(code, now, False)
    return out


def rate_table(realm: Realm) -> dict[str, dict]:
    """The active table: ``{state: {"TaxCode": id, "name": ..., "rates": [[name, percent], ...]}}``."""
    out = {}
    for code in realm.entities["TaxCode"].values():
        if code.get("_state") and code.get("Active"):
            out[code["_state"]] = {"TaxCode": code["Id"], "name": code["Name"],
                                   "rates": [[d["TaxRateRef"]["name"],
                                              realm.entities["TaxRate"][d["TaxRateRef"]["value"]]["RateValue"]]
                                             for d in code["SalesTaxRateList"]["TaxRateDetail"]]}
    return out


def line_code(value: Any, taxable_item: bool) -> dict:
    """A sales line's ``TaxCodeRef``: TAX or NON as sent (anything else is QBO's 6100), else from the item."""
    code = value.get("value") if isinstance(value, dict) else value
    if code is None or (isinstance(code, str) and not code.strip()):
        return {"value": "TAX" if taxable_item else "NON"}
    code = str(code).strip()
    if code.upper() not in PSEUDO_CODES:
        raise QBOError("6100", "Invalid Line TaxCode in the request",
                       f"Valid line TaxCodes for US should be TAX or NON. Supplied value: {code}",
                       element="Line.SalesItemLineDetail.TaxCodeRef")
    return {"value": code.upper()}


def _destination_state(realm: Realm, invoice: dict, customer: dict) -> str:
    for addr in (invoice.get("ShipAddr"), customer.get("ShipAddr"), invoice.get("BillAddr"),
                 customer.get("BillAddr"), realm.entities["CompanyInfo"].get("1", {}).get("CompanyAddr")):
        if isinstance(addr, dict) and str(addr.get("CountrySubDivisionCode") or "").strip():
            return str(addr["CountrySubDivisionCode"]).strip().upper()
    return ""


def refresh_preferences(realm: Realm, now: float) -> dict:
    """The company's ``Preferences`` (Id 1) as its options say: ``TaxPrefs`` from ``tax_model``,
    ``SalesFormsPrefs.CustomTxnNumbers`` from ``custom_txn_numbers``. A change bumps SyncToken and
    LastUpdatedTime; unchanged preferences stay as they are."""
    model = check_model(realm.opt("tax_model"))
    tax_prefs: dict[str, Any] = {"UsingSalesTax": model != "none", "PartnerTaxEnabled": model == "automated"}
    prefs = {
        "AccountingInfoPrefs": {"TrackDepartments": False, "ClassTrackingPerTxn": False,
                                "ClassTrackingPerTxnLine": False, "CustomerTerminology": "Customers"},
        "ProductAndServicesPrefs": {"ForSales": True, "ForPurchase": True, "QuantityWithPriceAndRate": True,
                                    "QuantityOnHand": True},
        "SalesFormsPrefs": {"CustomTxnNumbers": realm.opt("custom_txn_numbers") is True, "AllowDeposit": False,
                            "AllowDiscount": True, "AllowShipping": False, "AllowServiceDate": False,
                            "AllowEstimates": True, "ETransactionEnabledStatus": "NotApplicable"},
        "TaxPrefs": tax_prefs,
        "CurrencyPrefs": {"MultiCurrencyEnabled": False, "HomeCurrency": {"value": "USD"}},
        "OtherPrefs": {"NameValue": []},
        "domain": "QBO", "sparse": False, "Id": "1",
    }
    objs = realm.entities["Preferences"]
    current = objs.get("1")
    if current is None:
        obj = {**prefs, "SyncToken": "0"}
        _stamp(obj, now, True)
        objs["1"] = obj
    elif any(current.get(k) != v for k, v in prefs.items()):
        current.update(prefs)
        _stamp(current, now, False)
    return objs["1"]


def _invalid_code(value: Any) -> QBOError:
    return QBOError("2500", "Invalid Reference Id",
                    f"Invalid Reference Id : TxnTaxDetail.TxnTaxCodeRef (Supplied value: {value})",
                    element="TxnTaxDetail.TxnTaxCodeRef")


def compute(realm: Realm, model: str, request: dict, customer: dict, lines: list[dict],
            total: Decimal) -> tuple[dict, Decimal]:
    """``(TxnTaxDetail, TotalTax)`` for an invoice whose computed ``lines`` (ending with the SubTotal line)
    add up to ``total`` after discounts. ``request`` is the invoice as sent (merged for sparse updates)."""
    model = check_model(model)
    if model == "none":
        return {"TotalTax": ZERO}, ZERO
    taxable = sum((ln["Amount"] for ln in lines if ln.get("DetailType") == "SalesItemLineDetail"
                   and ln["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "TAX"), ZERO)
    subtotal = lines[-1]["Amount"] if lines and lines[-1].get("DetailType") == "SubTotalLineDetail" else total
    if str(request.get("ApplyTaxAfterDiscount", "")).lower() == "true" and subtotal and total != subtotal:
        taxable = (taxable * total / subtotal).quantize(CENT, ROUND_HALF_UP)
    sent = request.get("TxnTaxDetail")
    if sent is not None and not isinstance(sent, dict):
        raise QBOError("2010", "Request has invalid or unsupported property", "TxnTaxDetail must be an object")
    sent_ref = (sent or {}).get("TxnTaxCodeRef")
    codes = realm.entities["TaxCode"]
    if model == "automated":
        if customer.get("Taxable") is False:
            return {"TotalTax": ZERO}, ZERO  # exempt customer
        st = _destination_state(realm, request, customer)
        code = next((c for c in codes.values() if c.get("_state") == st and c.get("Active")), None) if st else None
        if code is None:
            return {"TotalTax": ZERO}, ZERO  # no rate for that state
    else:  # manual
        if sent_ref in (None, "", {}):
            if taxable:
                raise required("TxnTaxDetail.TxnTaxCodeRef")
            return {"TotalTax": ZERO}, ZERO
        value = str(sent_ref.get("value", "") if isinstance(sent_ref, dict) else sent_ref).strip()
        code = codes.get(value)
        if code is None or value in PSEUDO_CODES or not code.get("Active"):
            raise _invalid_code(value)
    tax_lines = []
    total_tax = ZERO
    for detail in code["SalesTaxRateList"]["TaxRateDetail"]:
        rate = realm.entities["TaxRate"][detail["TaxRateRef"]["value"]]
        pct = Decimal(rate["RateValue"])
        amount = (taxable * pct / 100).quantize(CENT, ROUND_HALF_UP)
        total_tax += amount
        tax_lines.append({"Amount": amount, "DetailType": "TaxLineDetail",
                          "TaxLineDetail": {"TaxRateRef": {"value": rate["Id"]}, "PercentBased": True,
                                            "TaxPercent": pct, "NetAmountTaxable": taxable}})
    return {"TxnTaxCodeRef": {"value": code["Id"]}, "TotalTax": total_tax, "TaxLine": tax_lines}, total_tax
