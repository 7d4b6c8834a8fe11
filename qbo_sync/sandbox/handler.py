"""The HTTP handler: reads a request (framing, limits), hands it to its route family, and writes answers the way
QBO's servers do (one write per answer, trace ids, cache headers, abrupt resets on demand)."""

from __future__ import annotations

import logging
import socket
import struct
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .routes import admin, api, oauth
from .routes.base import Abort, ApiCall
from .util import dumps, fmt_time, system_fault

if TYPE_CHECKING:
    from .server import Sandbox

log = logging.getLogger("qbo_sync.sandbox")

MAX_BODY = 50 * 1024 * 1024  # refuse bodies above this (QBO documents no limit; this guards the process)
# what QBO's API answers carry (samples/http_headers_examples.json, cdc_200)
API_CACHE_HEADERS = {"Expires": "0", "Cache-Control": "max-age=0, no-cache, no-store, must-revalidate, private"}


class BadFraming(Exception):
    """The request body can't be delimited (bad Content-Length, chunk syntax, unknown transfer coding)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    sandbox: Sandbox
    _api_call = False
    _tid = ""

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def version_string(self) -> str:
        return self.server_version  # "nginx", as recorded (the base class appends sys_version and a space)

    # quiet unless verbose
    def log_message(self, format: str, *args: Any) -> None:
        if self.sandbox.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ plumbing
    def reply(self, status: int, body: bytes, content_type: str = "application/json;charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # recorded traffic shows both spellings (python-quickbooks and others read ``intuit_tid``)
        self.send_header("intuit_tid", self._tid)
        self.send_header("Intuit-Tid", self._tid)
        if self.close_connection:
            self.send_header("Connection", "close")  # say so: the client must not send more on this socket
        if self._api_call:
            for k, v in API_CACHE_HEADERS.items():
                if not headers or k not in headers:
                    self.send_header(k, v)
        if headers:
            for k, v in headers.items():
                self.send_header(k, v)
        # one write for head and body (no Nagle / delayed-ACK stalls)
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def reply_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.reply(status, dumps(obj), headers=headers)

    def drop(self) -> None:
        """Close the connection abruptly (TCP RST), no response."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        raise Abort()

    def _read_body(self) -> bytes:
        """The request body, framed by ``Transfer-Encoding: chunked`` or ``Content-Length`` (RFC 9112 6.3):
        every byte of it is consumed, so nothing is left to be read as the next request on the connection."""
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            codings = [c.strip().lower() for c in te.split(",") if c.strip()]
            self.close_connection = self.close_connection or "Content-Length" in self.headers
            if codings != ["chunked"]:
                self.close_connection = True
                raise BadFraming(501, f"Transfer-Encoding {te!r} is not supported (only chunked)")
            return self._read_chunked()
        text = (self.headers.get("Content-Length") or "").strip()
        if not text:
            return b""
        if not text.isdigit():
            self.close_connection = True
            raise BadFraming(400, f"invalid Content-Length: {text!r}")
        length = int(text)
        if length > MAX_BODY:
            self.close_connection = True
            raise BadFraming(413, f"request body larger than {MAX_BODY} bytes")
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            self.close_connection = True
            raise ConnectionError("request body cut short")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        size_total = 0
        while True:
            line = self.rfile.readline(1026)
            if not line:
                raise ConnectionError("connection closed inside a chunked body")
            head = line.split(b";", 1)[0].strip()
            try:
                size = int(head, 16) if head and all(c in b"0123456789abcdefABCDEF" for c in head) else -1
            except ValueError:
                size = -1
            if size < 0 or not line.endswith(b"\n"):
                self.close_connection = True
                raise BadFraming(400, "malformed chunk size line")
            if size == 0:
                break
            size_total += size
            if size_total > MAX_BODY:
                self.close_connection = True
                raise BadFraming(413, f"request body larger than {MAX_BODY} bytes")
            data = self.rfile.read(size)
            if len(data) < size:
                raise ConnectionError("connection closed inside a chunk")
            chunks.append(data)
            if self.rfile.readline(3).rstrip(b"\r\n") != b"":
                self.close_connection = True
                raise BadFraming(400, "chunk data not followed by CRLF")
        for _ in range(100):  # trailer fields (ignored) up to the empty line
            line = self.rfile.readline(8194)
            if line in (b"\r\n", b"\n", b""):
                break
        else:
            self.close_connection = True
            raise BadFraming(400, "too many trailer fields")
        return b"".join(chunks)

    def bearer_token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else None

    def _dispatch(self, method: str) -> None:
        self._tid = "1-" + uuid.uuid4().hex[:8] + "-" + uuid.uuid4().hex[:24]
        self._api_call = self.path.startswith("/v3/")
        try:
            try:
                body = self._read_body()
            except BadFraming as err:
                self.reply_json(err.status, {"error": "invalid_request", "error_description": err.detail}
                           if not self._api_call else
                           {"Fault": {"Error": [{"Message": "Bad request", "Detail": err.detail,
                                                 "code": str(err.status)}], "type": "ValidationFault"},
                            "time": fmt_time(self.sandbox.clock.time())})
                return
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            segs = [s for s in parts.path.split("/") if s]
            if len(segs) >= 3 and segs[0] == "v3" and segs[1] == "company":
                call = ApiCall(method, segs[3:], params, body, parts.path, api.kind_of(method, segs[3:], params))
                api.handle(self, method, segs[2], call)
            elif parts.path.startswith(oauth.PREFIXES):
                oauth.handle(self, method, parts.path.rstrip("/"), params, body)
            elif parts.path.startswith(admin.PREFIX):
                admin.handle(self, method, parts.path.rstrip("/"), params, body)
            else:
                self.sandbox.global_stats["other"] += 1
                self.reply_json(404, {"error": "not_found", "path": parts.path})
        except Abort:
            return
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception:  # a sandbox bug must not hang the client: answer like QBO's system fault
            log.exception("sandbox error on %s %s", method, self.path)
            self.close_connection = True
            try:
                self.reply_json(500, {"Fault": system_fault().fault(), "time": fmt_time(self.sandbox.clock.time())})
            except OSError:
                pass
