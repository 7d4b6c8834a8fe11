"""HTTP framing and headers: chunked request bodies on keep-alive connections, QBO's response headers."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from urllib.parse import urlencode, urlsplit

import pytest


def connect(sandbox) -> http.client.HTTPConnection:
    parts = urlsplit(sandbox.base_url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


def pieces(data: bytes, n: int = 3):
    step = max(1, len(data) // n)
    return iter([data[i:i + step] for i in range(0, len(data), step)])


BASIC = "Basic " + base64.b64encode(b"chunk-client:secret").decode()


def test_token_endpoint_reads_a_chunked_body_and_the_connection_stays_usable(qbo_sandbox, qbo_realm):
    tokens = qbo_sandbox.issue_tokens(qbo_realm)
    conn = connect(qbo_sandbox)
    form = urlencode({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).encode()
    conn.request("POST", "/oauth2/v1/tokens/bearer", body=pieces(form), encode_chunked=True,
                 headers={"Authorization": BASIC, "Content-Type": "application/x-www-form-urlencoded",
                          "Accept": "application/json"})
    r = conn.getresponse()
    answer = json.loads(r.read())
    assert r.status == 200, answer  # before: 400 unsupported_grant_type (the body was never read)
    assert answer["token_type"] == "bearer" and answer["access_token"]
    sock = conn.sock
    # the same connection answers the next request (no leftover chunk bytes read as a request line)
    conn.request("GET", f"/v3/company/{qbo_realm}/companyinfo/{qbo_realm}",
                 headers={"Authorization": f"Bearer {answer['access_token']}", "Accept": "application/json"})
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["CompanyInfo"]["Id"] == "1"
    assert conn.sock is sock
    conn.close()


def test_chunked_create_then_keep_alive_read(qbo_sandbox, qbo_realm, qbo_tokens):
    conn = connect(qbo_sandbox)
    auth = {"Authorization": f"Bearer {qbo_tokens['access_token']}", "Accept": "application/json"}
    data = json.dumps({"DisplayName": "Chunked Customer", "CompanyName": "Chunks Inc"}).encode()
    conn.request("POST", f"/v3/company/{qbo_realm}/customer?minorversion=75", body=pieces(data, 4),
                 encode_chunked=True, headers={**auth, "Content-Type": "application/json"})
    r = conn.getresponse()
    created = json.loads(r.read())
    assert r.status == 200, created  # before: 2010 (empty body)
    cid = created["Customer"]["Id"]
    sock = conn.sock
    for _ in range(2):
        conn.request("GET", f"/v3/company/{qbo_realm}/customer/{cid}", headers=auth)
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["Customer"]["CompanyName"] == "Chunks Inc"
    # a query sent chunked as application/text
    conn.request("POST", f"/v3/company/{qbo_realm}/query", body=pieces(b"select * from Customer"),
                 encode_chunked=True, headers={**auth, "Content-Type": "application/text"})
    r = conn.getresponse()
    assert r.status == 200 and json.loads(r.read())["QueryResponse"]["maxResults"] == 1
    assert conn.sock is sock
    conn.close()


def raw(sandbox, payload: bytes) -> bytes:
    parts = urlsplit(sandbox.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_raw_chunks_with_extensions_and_trailers_then_a_second_request(qbo_sandbox, qbo_realm, qbo_tokens):
    body = json.dumps({"DisplayName": "Raw Chunks"}).encode()
    head, tail = body[:10], body[10:]
    req = (f"POST /v3/company/{qbo_realm}/customer HTTP/1.1\r\nHost: x\r\n"
           f"Authorization: Bearer {qbo_tokens['access_token']}\r\nAccept: application/json\r\n"
           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    req += f"{len(head):x};ext=1\r\n".encode() + head + b"\r\n" + f"{len(tail):X}\r\n".encode() + tail + b"\r\n"
    req += b"0\r\nX-Trailer: ignored\r\n\r\n"
    req += b"GET /_sandbox/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw(qbo_sandbox, req)
    assert out.count(b"HTTP/1.1 ") == 2
    first, second = out.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200") and b'"Raw Chunks"' in first
    assert second.startswith(b"200") and b'"ok":true' in second


@pytest.mark.parametrize("framing, status", [
    (b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", b"400"),
    (b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", b"400"),
    (b"Transfer-Encoding: gzip\r\n\r\nxyz", b"501"),
    (b"Content-Length: ten\r\n\r\n", b"400"),
])
def test_bodies_that_cannot_be_framed_get_a_clean_4xx_and_a_closed_connection(qbo_sandbox, qbo_realm, qbo_tokens,
                                                                              framing, status):
    req = (f"POST /v3/company/{qbo_realm}/customer HTTP/1.1\r\nHost: x\r\n"
           f"Authorization: Bearer {qbo_tokens['access_token']}\r\n").encode() + framing
    req += b"GET /_sandbox/health HTTP/1.1\r\nHost: x\r\n\r\n"
    out = raw(qbo_sandbox, req)
    assert out.startswith(b"HTTP/1.1 " + status)
    assert out.count(b"HTTP/1.1 ") == 1  # nothing after it was read as another request
    assert b"Connection: close" in out
    assert qbo_sandbox.stats(qbo_realm)["entities"]["Customer"] == 0


def test_api_answers_carry_qbos_headers(api):
    r = api.get("companyinfo/" + api.realm)
    assert r.headers["intuit_tid"] == r.headers["Intuit-Tid"] and r.headers["intuit_tid"].startswith("1-")
    assert r.headers["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"
    assert r.headers["Expires"] == "0"
    assert r.headers["Server"] == "nginx" and r.headers["Content-Type"] == "application/json;charset=utf-8"
    other = api.get("companyinfo/" + api.realm)
    assert other.headers["intuit_tid"] != r.headers["intuit_tid"]  # one per request
    fault = api.query("select * from Nothing")
    assert fault.status_code == 400 and fault.headers["Cache-Control"].startswith("max-age=0")
    assert fault.headers["intuit_tid"]
