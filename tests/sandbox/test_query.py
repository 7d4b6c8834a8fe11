"""The query language subset, by GET and POST."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import fault_code, sample


@pytest.fixture
def people(api):
    names = ["Amy's Bird Sanctuary", "Bill's Windsurf Shop", "Cool Cars", "Diego Rodriguez", "Dukes Basketball"]
    made = [api.customer(n, CompanyName=n.split()[0]) for n in names]
    api.post("customer", {"Id": made[2]["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    return made


def rows(resp, entity="Customer"):
    assert resp.status_code == 200, resp.text
    return resp.json()["QueryResponse"].get(entity, [])


def test_select_all_default_active_only_and_shape(api, people):
    r = api.query("SELECT * FROM Customer")
    body = r.json()
    assert set(body) == {"QueryResponse", "time"}
    qr = body["QueryResponse"]
    assert qr["startPosition"] == 1 and qr["maxResults"] == 4
    assert "Cool Cars" not in [c["DisplayName"] for c in qr["Customer"]]
    all_rows = rows(api.query("select * from Customer where Active IN (true, false)"))
    assert len(all_rows) == 5
    inactive = rows(api.query("select * from customer where active = false"))
    assert [c["DisplayName"] for c in inactive] == ["Cool Cars"]


def test_get_and_post_give_the_same_answer(api, people):
    q = "select * from Customer where DisplayName LIKE 'D%' ORDERBY DisplayName DESC"
    a, b = rows(api.query(q, "GET")), rows(api.query(q, "POST"))
    assert a == b and [c["DisplayName"] for c in a] == ["Dukes Basketball", "Diego Rodriguez"]


def test_escaped_apostrophe(api, people):
    got = rows(api.query("select * from Customer where DisplayName = 'Amy\\'s Bird Sanctuary'"))
    assert [c["DisplayName"] for c in got] == ["Amy's Bird Sanctuary"]


def test_count(api, people):
    r = api.query("SELECT COUNT(*) FROM Customer")
    assert r.json()["QueryResponse"] == {"totalCount": 4}
    assert set(r.json()) == set(sample("query_count_response.json"))
    r = api.query("select count(*) from Customer where Active in (true,false) and DisplayName like '%s%'")
    assert r.json()["QueryResponse"]["totalCount"] == 4  # all but Diego Rodriguez


def test_pagination_is_one_based(api, people):
    page1 = rows(api.query("select * from Customer ORDERBY DisplayName STARTPOSITION 1 MAXRESULTS 2"))
    page2 = rows(api.query("select * from Customer ORDERBY DisplayName STARTPOSITION 3 MAXRESULTS 2"))
    page3 = api.query("select * from Customer ORDERBY DisplayName STARTPOSITION 5 MAXRESULTS 2")
    assert [c["DisplayName"] for c in page1 + page2] == sorted(
        ["Amy's Bird Sanctuary", "Bill's Windsurf Shop", "Diego Rodriguez", "Dukes Basketball"])
    assert page3.json()["QueryResponse"] == {}  # no matches: no entity key at all


def test_maxresults_default_100_and_above_1000_refused(api):
    for n in range(120):
        api.customer(f"C{n:03d}")
    assert len(rows(api.query("select * from Customer"))) == 100
    assert len(rows(api.query("select * from Customer MAXRESULTS 1000"))) == 120
    # QBO refuses more than 1000 rather than capping (quickbooks-ruby#24 records the fault text)
    for method in ("POST", "GET"):
        r = api.query("select * from Customer STARTPOSITION 1 MAXRESULTS 1001", method=method)
        assert r.status_code == 400
        err = r.json()["Fault"]["Error"][0]
        assert err["code"] == "4001" and err["Message"] == "Invalid query"
        assert err["Detail"] == "QueryValidationError: value 1001 is too large. Max allowed value is 1000"
        assert r.json()["Fault"]["type"] == "ValidationFault"


def test_comparisons_in_and_numbers(api, people):
    i = api.item()
    c = people[0]
    for amt in (10, 50, 100):
        api.invoice(c["Id"], i["Id"], amt)
    invs = rows(api.query("select * from Invoice where TotalAmt >= '50' ORDERBY TotalAmt"), "Invoice")
    assert [x["TotalAmt"] for x in invs] == [50.0, 100.0]
    invs = rows(api.query("select * from Invoice where TotalAmt < 50"), "Invoice")
    assert [x["TotalAmt"] for x in invs] == [10.0]
    ids = [people[0]["Id"], people[1]["Id"]]
    got = rows(api.query(f"select * from Customer where Id in ('{ids[0]}', '{ids[1]}')"))
    assert sorted(c["Id"] for c in got) == sorted(ids)
    got = rows(api.query(f"select * from Invoice where CustomerRef = '{c['Id']}' and Balance > '20'"), "Invoice")
    assert len(got) == 2


def test_lastupdatedtime_filters(api, qbo_sandbox, people):
    first = rows(api.query("select * from Customer ORDERBY MetaData.LastUpdatedTime"))
    stamp = first[-1]["MetaData"]["LastUpdatedTime"]
    assert rows(api.query(f"select * from Customer where MetaData.LastUpdatedTime > '{stamp}'")) == []
    qbo_sandbox.advance(5)
    c = people[0]
    api.post("customer", {"Id": c["Id"], "SyncToken": "0", "sparse": True, "Notes": "changed"})
    changed = rows(api.query(f"select * from Customer where MetaData.LastUpdatedTime > '{stamp}'"))
    assert [x["Id"] for x in changed] == [c["Id"]]
    utc = rows(api.query("select * from Customer where MetaData.LastUpdatedTime >= '2015-01-01T00:00:00Z'"))
    assert len(utc) == 4


def test_errors_as_qbo_returns_them(api):
    recorded = sample("fault_4001_invalid_query_response.json")
    r = api.query("select * from Custmoer")
    assert r.status_code == 400
    assert r.json()["Fault"]["Error"][0] == recorded["Fault"]["Error"][0]
    r = api.query("select * from Customer where DisplayName = 'a' OR DisplayName = 'b'")
    assert r.status_code == 400 and fault_code(r) == "4000"
    r = api.query("select * from Customer where Foo = 'a'")
    assert fault_code(r) == "4001"
    r = api.query("selec * from Customer")
    assert fault_code(r) == "4000"


def test_other_entities_queryable(api):
    i = api.item("Thing")
    got = rows(api.query("select *, Sku from Item where Name = 'Thing'"), "Item")
    assert got[0]["Id"] == i["Id"]
    accts = rows(api.query("select * from Account where AccountType = 'Income'"), "Account")
    assert accts[0]["Name"] == "Sales of Product Income"
    info = rows(api.query("select * from CompanyInfo"), "CompanyInfo")
    assert len(info) == 1
