"""Fault bodies (recorded samples and the odd shapes QBO and proxies send) become typed errors, never crashes."""

from __future__ import annotations

import json

import pytest

from qbo_sync.client import error_from_fault, error_from_response, parse_fault_body
from qbo_sync.exceptions import (
    QboApiError,
    QboAuthError,
    QboDuplicateName,
    QboNotFound,
    QboProtocolError,
    QboRateLimited,
    QboServerError,
    QboStaleObject,
    QboSyncError,
    QboValidationError,
)
from tests.client.fakes import sample


@pytest.mark.parametrize(
    ("name", "status", "cls", "code", "element"),
    [
        ("fault_6240_duplicate_name_response.json", 400, QboDuplicateName, "6240", None),
        ("fault_2030_invalid_id_response.json", 400, QboValidationError, "2030", "Id"),
        ("fault_4001_invalid_query_response.json", 400, QboValidationError, "4001", None),
        ("fault_2010_unsupported_property_response.json", 400, QboValidationError, "2010", None),
        # Fault code "500" ("Unsupported Operation") comes with HTTP 400: a client error, not a server error.
        ("fault_500_unsupported_operation_response.json", 400, QboValidationError, "500", None),
        ("fault_401_token_expired_response.json", 401, QboAuthError, "3200", None),
        ("fault_429_throttle_exceeded.xml", 429, QboRateLimited, "3001", None),
    ],
)
def test_recorded_faults_are_typed(name: str, status: int, cls: type, code: str, element: str | None) -> None:
    err = error_from_response(status, sample(name), intuit_tid="1-abc")
    assert type(err) is cls
    assert err.code == code
    assert err.element == element
    assert err.status == status
    assert err.intuit_tid == "1-abc"
    assert err.message
    assert err.retryable is (cls is QboRateLimited)


def test_validation_error_names_the_field() -> None:
    err = error_from_response(400, sample("fault_2030_invalid_id_response.json"))
    assert isinstance(err, QboValidationError)
    assert err.field == "Id"
    assert "Invalid ID" in str(err) and "element=Id" in str(err)


def test_xml_throttle_body_is_read_even_with_json_requested() -> None:
    err = error_from_response(429, sample("fault_429_throttle_exceeded.xml"))
    assert isinstance(err, QboRateLimited)
    assert err.fault_type == "SERVICE"
    assert err.detail == "The request limit was reached.  Try again later"
    assert err.wait_seconds is None  # QBO sends no Retry-After; the client applies its own 60 s


def test_xml_throttle_fault_with_historical_403_is_still_rate_limited() -> None:
    err = error_from_response(403, sample("fault_429_throttle_exceeded.xml"))
    assert isinstance(err, QboRateLimited) and err.retryable


def test_retry_after_header_is_honoured() -> None:
    err = error_from_response(429, b"", headers={"Retry-After": "7"})
    assert isinstance(err, QboRateLimited)
    assert err.wait_seconds == 7


def test_lower_case_401_detail_does_not_leak_the_token() -> None:
    body = sample("fault_401_token_expired_response.json")
    token_piece = json.loads(body)["fault"]["error"][0]["detail"].split(": ")[1]
    err = error_from_response(401, body)
    assert isinstance(err, QboAuthError)
    assert err.fault_type == "AUTHENTICATION"
    assert token_piece not in str(err) and token_piece not in repr(err)
    assert all(token_piece not in str(e) for e in err.errors)
    assert "Token expired" in (err.detail or "")


@pytest.mark.parametrize(
    ("status", "body", "cls", "retryable"),
    [
        (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", QboServerError, True),
        (503, b"", QboServerError, True),
        (500, b'{"Fault": {"Error": [{"Message": "Internal', QboServerError, True),
        (400, b'{"Fault": {"Error": [{"Message": "trunc', QboProtocolError, False),
        (400, b"\x00\xff\xfe garbage", QboProtocolError, False),
        (418, b"<!DOCTYPE html><html>teapot</html>", QboProtocolError, False),
        (404, b"<html>Not Found</html>", QboNotFound, False),
        (429, b"not xml, not json", QboRateLimited, True),
        (401, b"", QboAuthError, False),
        (400, b"[1, 2, 3]", QboProtocolError, False),
        (400, b'{"Fault": "a string"}', QboProtocolError, False),
        (400, b'{"Fault": {"Error": {"code": "6240", "Message": "one error, not a list"}}}', QboDuplicateName, False),
    ],
)
def test_garbage_and_odd_bodies_give_typed_errors(status: int, body: bytes, cls: type, retryable: bool) -> None:
    err = error_from_response(status, body)
    assert type(err) is cls
    assert isinstance(err, QboApiError) and isinstance(err, QboSyncError)
    assert err.retryable is retryable
    assert err.status == status


def test_xml_with_entities_is_refused_not_expanded() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Fault><Error code="1">&a;</Error></Fault>'
    assert parse_fault_body(bomb) is None
    assert isinstance(error_from_response(400, bomb), QboProtocolError)


def test_long_garbage_is_shortened_in_the_error() -> None:
    err = error_from_response(502, b"x" * 10_000)
    assert len(err.detail or "") < 300


def test_batch_item_faults() -> None:
    items = json.loads(sample("batch_response.json"))["BatchItemResponse"]
    faults = {i["bId"]: error_from_fault(i["Fault"]) for i in items if "Fault" in i}
    assert isinstance(faults["bid2"], QboNotFound) and faults["bid2"].code == "610"
    assert isinstance(faults["bid3"], QboStaleObject) and faults["bid3"].code == "5010"
    assert not any(f.retryable for f in faults.values())
    docs = json.loads(sample("batch_response_with_faults_docs.json"))["BatchItemResponse"]
    assert isinstance(error_from_fault(docs[0]["Fault"]), QboDuplicateName)


def test_system_fault_in_a_batch_item_is_a_server_error() -> None:
    err = error_from_fault({"Error": [{"Message": "boom", "code": "10000"}], "type": "SystemFault"})
    assert isinstance(err, QboServerError) and err.retryable


def test_str_and_repr_are_useful() -> None:
    err = error_from_response(400, sample("fault_6240_duplicate_name_response.json"), intuit_tid="tid-9")
    assert "Duplicate Name Exists Error" in str(err)
    assert "code=6240" in str(err) and "intuit_tid=tid-9" in str(err)
    assert "QboDuplicateName" in repr(err)
