"""The subset of QBO's query language that real clients use.

``SELECT * | COUNT(*) FROM <Entity> [WHERE <prop> <op> <value> [AND ...]] [ORDERBY <prop> [ASC|DESC], ...]
[STARTPOSITION n] [MAXRESULTS n]`` with ``= < > <= >= IN LIKE``; no OR, no projections (``SELECT *, Sku`` is
accepted as python-quickbooks sends it). Keywords, entity and property names are case-insensitive;
string literals use single quotes with ``\\'`` escapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .store import NAME_LISTS, Realm
from .util import QBOError, parse_datetime

DEFAULT_MAX = 100
HARD_MAX = 1000

_META = ("MetaData.CreateTime", "MetaData.LastUpdatedTime")
FILTERABLE: dict[str, tuple[str, ...]] = {
    "Customer": ("Id", "DisplayName", "GivenName", "MiddleName", "FamilyName", "CompanyName", "Active",
                 "PrimaryEmailAddr", "PrimaryEmailAddr.Address", "Balance", "FullyQualifiedName", "Job",
                 "ParentRef", "PrintOnCheckName", "Taxable", *_META),
    "Item": ("Id", "Name", "Active", "Type", "Sku", "FullyQualifiedName", "ParentRef", "UnitPrice", "Taxable",
             "IncomeAccountRef", *_META),
    "Account": ("Id", "Name", "Active", "AccountType", "AccountSubType", "Classification", "FullyQualifiedName",
                "AcctNum", "CurrentBalance", *_META),
    "Invoice": ("Id", "CustomerRef", "DocNumber", "TxnDate", "DueDate", "Balance", "TotalAmt", "EmailStatus",
                "PrintStatus", *_META),
    "Payment": ("Id", "CustomerRef", "TxnDate", "TotalAmt", "PaymentRefNum", "UnappliedAmt", *_META),
    "CreditMemo": ("Id", "CustomerRef", "DocNumber", "TxnDate", "Balance", "TotalAmt", "RemainingCredit", *_META),
    "RefundReceipt": ("Id", "CustomerRef", "DocNumber", "TxnDate", "TotalAmt", "PaymentRefNum", *_META),
    "CompanyInfo": ("Id", "CompanyName", *_META),
    "TaxCode": ("Id", "Name", "Active", "Taxable", "TaxGroup", "Description", *_META),
    "TaxRate": ("Id", "Name", "Active", "RateValue", "Description", *_META),
    "Preferences": ("Id", *_META),
}
ENTITY_NAMES = {name.lower(): name for name in FILTERABLE}
_DATE_PROPS = {"TxnDate", "DueDate"}
_DATETIME_PROPS = set(_META)

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:\\.|[^'\\])*')
      | (?P<num>-?\d+(?:\.\d+)?(?![\w.]))
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),*])
      | (?P<word>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)


@dataclass
class Query:
    entity: str
    count: bool = False
    where: list[tuple[str, str, Any]] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (prop, descending)
    start: int = 1
    max_results: int = DEFAULT_MAX


def parse_error(token: str, pos: int) -> QBOError:
    return QBOError("4000", "Error parsing query",
                    f'QueryParserError: Encountered " "{token}" "{token} "" at line 1, column {pos + 1}.')


def invalid(detail: str) -> QBOError:
    return QBOError("4001", "Invalid query", f"QueryValidationError: {detail}")


def tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    pos = 0
    text = text.rstrip().rstrip(";")
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = text[pos:].strip().split(" ")[0]
            raise parse_error(bad, pos)
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise QBOError("4000", "Error parsing query",
                           "QueryParserError: Encountered \"<EOF>\" at end of query.")
        self.i += 1
        return tok

    def kw(self, *words: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].upper() in words:
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        tok = self.take()
        if tok[0] != "word" or tok[1].upper() != word:
            raise parse_error(tok[1], tok[2])

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok[1] != value:
            raise parse_error(tok[1], tok[2])


def _prop(entity: str, name: str) -> str:
    for p in FILTERABLE[entity]:
        if p.lower() == name.lower():
            return p
    raise invalid(f"property '{name}' is not queryable")


def _literal(tok: tuple[str, str, int]) -> Any:
    kind, text, pos = tok
    if kind == "str":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind == "num":
        return Decimal(text)
    if kind == "word" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise parse_error(text, pos)


def parse(text: str) -> Query:
    p = _Parser(text)
    p.expect_kw("SELECT")
    count = False
    tok = p.take()
    if tok[1] == "*":
        while p.peek() and p.peek()[1] == ",":  # type: ignore[index]
            p.take()
            p.take()  # extra selected fields (e.g. Sku): everything is returned anyway
    elif tok[0] == "word" and tok[1].upper() == "COUNT":
        p.expect("(")
        p.expect("*")
        p.expect(")")
        count = True
    else:
        raise parse_error(tok[1], tok[2])
    p.expect_kw("FROM")
    tok = p.take()
    if tok[0] != "word":
        raise parse_error(tok[1], tok[2])
    entity = ENTITY_NAMES.get(tok[1].lower())
    if entity is None:
        raise invalid(f"invalid context declaration: {tok[1]}")
    q = Query(entity=entity, count=count)
    if p.kw("WHERE"):
        while True:
            ptok = p.take()
            if ptok[0] != "word":
                raise parse_error(ptok[1], ptok[2])
            prop = _prop(entity, ptok[1])
            optok = p.take()
            if optok[0] == "op" and optok[1] in ("=", "<", ">", "<=", ">="):
                op = optok[1]
                value: Any = _literal(p.take())
            elif optok[0] == "word" and optok[1].upper() == "IN":
                op = "IN"
                p.expect("(")
                value = []
                while True:
                    value.append(_literal(p.take()))
                    sep = p.take()
                    if sep[1] == ")":
                        break
                    if sep[1] != ",":
                        raise parse_error(sep[1], sep[2])
            elif optok[0] == "word" and optok[1].upper() == "LIKE":
                op = "LIKE"
                value = _literal(p.take())
                if not isinstance(value, str):
                    raise invalid("LIKE needs a string value")
            else:
                raise parse_error(optok[1], optok[2])
            q.where.append((prop, op, _coerce(prop, value)))
            if not p.kw("AND"):
                break
    if p.kw("ORDERBY") or (p.kw("ORDER") and p.kw("BY")):
        while True:
            ptok = p.take()
            if ptok[0] != "word":
                raise parse_error(ptok[1], ptok[2])
            prop = _prop(entity, ptok[1])
            desc = False
            if p.kw("DESC"):
                desc = True
            else:
                p.kw("ASC")
            q.order.append((prop, desc))
            tok2 = p.peek()
            if tok2 and tok2[1] == ",":
                p.take()
                continue
            break
    while p.peek() is not None:
        if p.kw("STARTPOSITION"):
            q.start = _int(p.take())
        elif p.kw("MAXRESULTS"):
            q.max_results = _int(p.take())
            if q.max_results > HARD_MAX:  # refused, not capped (quickbooks-ruby#24 records the text)
                raise invalid(f"value {q.max_results} is too large. Max allowed value is {HARD_MAX}")
        else:
            tok = p.take()
            raise parse_error(tok[1], tok[2])
    if q.start < 1:
        q.start = 1
    q.max_results = max(0, min(q.max_results, HARD_MAX))
    return q


def _int(tok: tuple[str, str, int]) -> int:
    if tok[0] != "num" or "." in tok[1]:
        raise parse_error(tok[1], tok[2])
    return int(tok[1])


def _coerce(prop: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_coerce(prop, v) for v in value]
    if prop in _DATETIME_PROPS:
        try:
            return int(parse_datetime(str(value)))
        except ValueError:
            raise invalid(f"invalid datetime value '{value}' for {prop}") from None
    return value


def _get(obj: dict, prop: str) -> Any:
    if prop in _DATETIME_PROPS:
        key = "_created" if prop.endswith("CreateTime") else "_upd"
        return int(obj.get(key, 0))
    cur: Any = obj
    for part in prop.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    if isinstance(cur, dict):  # references compare on their value; emails on Address
        cur = cur.get("value", cur.get("Address"))
    return cur


def _norm(a: Any, b: Any) -> tuple[Any, Any]:
    """Bring a stored value and a literal to comparable types."""
    if a is None:
        return None, b
    if isinstance(a, bool) or isinstance(b, bool):
        if isinstance(b, str):
            b = b.lower() == "true"
        return bool(a), bool(b)
    if isinstance(a, int | Decimal) and not isinstance(a, bool):
        try:
            return Decimal(a), Decimal(str(b))
        except InvalidOperation:
            return str(a), str(b)
    sa = str(a)
    sb = str(b)
    if sa.isdigit() and sb.isdigit():  # Ids and references are numeric strings
        return int(sa), int(sb)
    return sa.lower(), sb.lower()


def _like(value: Any, pattern: str) -> bool:
    if value is None:
        return False
    rx = "^" + ".*".join(re.escape(part) for part in pattern.lower().split("%")) + "$"
    return re.match(rx, str(value).lower(), re.S) is not None


def _match(obj: dict, where: list[tuple[str, str, Any]]) -> bool:
    for prop, op, lit in where:
        val = _get(obj, prop)
        if op == "LIKE":
            if not _like(val, lit):
                return False
            continue
        if op == "IN":
            if not any(_cmp(val, "=", v) for v in lit):
                return False
            continue
        if not _cmp(val, op, lit):
            return False
    return True


def _cmp(val: Any, op: str, lit: Any) -> bool:
    a, b = _norm(val, lit)
    if a is None:
        return False
    try:
        if op == "=":
            return a == b
        if op == "<":
            return a < b
        if op == ">":
            return a > b
        if op == "<=":
            return a <= b
        if op == ">=":
            return a >= b
    except TypeError:
        return False
    return False


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | Decimal):
        return (1, Decimal(value))
    s = str(value)
    if s.isdigit():
        return (1, Decimal(s))
    return (2, s.lower())


def execute(realm: Realm, text: str) -> dict:
    """Run a query; returns the ``QueryResponse`` dict (Decimals inside)."""
    q = parse(text)
    where = list(q.where)
    if q.entity in NAME_LISTS and not any(p == "Active" for p, _, _ in where):
        where.append(("Active", "=", True))
    with realm.lock:
        rows = [o for o in realm.entities[q.entity].values() if _match(o, where)]
        if q.entity in ("TaxCode", "TaxRate") and not any(p == "Active" for p, _, _ in where):
            rows = [o for o in rows if o.get("Active", True)]  # like name lists (the TAX/NON codes have no Active)
        if q.count:
            return {"totalCount": len(rows)}
        if q.order:
            for prop, desc in reversed(q.order):
                rows.sort(key=lambda o, p=prop: _sort_key(_get(o, p)), reverse=desc)
        else:
            rows.sort(key=lambda o: (o["Id"].isdigit(), int(o["Id"]) if o["Id"].isdigit() else 0))  # TAX, NON first
        page = rows[q.start - 1: q.start - 1 + q.max_results]
        if not page:
            return {}
        return {q.entity: page, "startPosition": q.start, "maxResults": len(page)}
