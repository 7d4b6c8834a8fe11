"""Helpers for the sandbox's own tests: a tiny QBO client bound to one realm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

DATA = Path(__file__).parent / "data"


def sample(name: str):
    text = (DATA / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


class Api:
    """Raw HTTP against one realm with a bearer token (what any QBO client does)."""

    def __init__(self, sandbox, realm_id: str, token: str):
        self.sandbox = sandbox
        self.realm = realm_id
        self.base = f"{sandbox.base_url}/v3/company/{realm_id}"
        self.s = requests.Session()
        self.s.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def get(self, path: str, **params):
        params.setdefault("minorversion", "75")
        return self.s.get(f"{self.base}/{path}", params=params, timeout=10)

    def post(self, path: str, body, **params):
        params.setdefault("minorversion", "75")
        return self.s.post(f"{self.base}/{path}", json=body, params=params, timeout=10)

    def query(self, text: str, method: str = "POST"):
        if method == "GET":
            return self.get("query", query=text)
        return self.s.post(f"{self.base}/query", data=text.encode(), params={"minorversion": "75"},
                           headers={"Content-Type": "application/text"}, timeout=10)

    # shortcuts returning the entity (asserting 200)
    def create(self, entity: str, body: dict) -> dict:
        r = self.post(entity.lower(), body)
        assert r.status_code == 200, r.text
        return r.json()[entity]

    def read(self, entity: str, oid: str) -> dict:
        r = self.get(f"{entity.lower()}/{oid}")
        assert r.status_code == 200, r.text
        return r.json()[entity]

    def customer(self, name: str = "Jane Doe", **extra) -> dict:
        return self.create("Customer", {"DisplayName": name, **extra})

    def item(self, name: str = "Services", price="25", **extra) -> dict:
        return self.create("Item", {"Name": name, "Type": "Service", "UnitPrice": price,
                                    "IncomeAccountRef": {"value": "1"}, **extra})

    def invoice(self, customer_id: str, item_id: str, amount=100, **extra) -> dict:
        body = {"CustomerRef": {"value": customer_id},
                "Line": [{"Amount": amount, "DetailType": "SalesItemLineDetail",
                          "SalesItemLineDetail": {"ItemRef": {"value": item_id}}}], **extra}
        return self.create("Invoice", body)


def fault_code(resp) -> str:
    return resp.json()["Fault"]["Error"][0]["code"]


@pytest.fixture
def api(qbo_sandbox, qbo_realm, qbo_tokens):
    return Api(qbo_sandbox, qbo_realm, qbo_tokens["access_token"])
