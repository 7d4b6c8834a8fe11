"""The sandbox HTTP server and its Python API (:class:`Sandbox`)."""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import re
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from . import entities, faults, query, tax
from .limits import RealmLimiter, throttle_body
from .oauth import OAuth, OAuthError
from .store import ENTITY_TYPES, NOT_IN_CDC, Realm, stats_snapshot
from .util import (
    Clock,
    QBOError,
    auth_fault,
    dumps,
    fmt_meta,
    fmt_time,
    loads,
    parse_datetime,
    required,
    state_dumps,
    state_loads,
    system_fault,
    unsupported,
)
from .webhooks import Dispatcher

log = logging.getLogger("qbo_sync.sandbox")

DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "realms": (),
    "starter_data": False,
    "client_id": None,
    "client_secret": None,
    "webhook_url": None,
    "verifier_token": None,
    "cloudevents": False,
    "latency_ms": None,
    "rate_limit": 500,
    "concurrency": 10,
    "batch_rate": 40,
    "batch_size": 30,
    **{option: 0.0 for option in faults.RATE_OPTIONS},
    "access_token_ttl": 3600,
    "refresh_rotate_after": 86400,
    "time_scale": 1.0,
    "state_file": None,
    "tax_model": "none",
    "custom_txn_numbers": None,
}
# options that may also be set for one realm only (Sandbox.configure(realm_id=..., ...))
REALM_OPTIONS = ("latency_ms", "rate_limit", "concurrency", "batch_rate", "batch_size", *faults.RATE_OPTIONS,
                 "tax_model", "custom_txn_numbers")
RUNTIME_OPTIONS = (*REALM_OPTIONS, "client_id", "client_secret", "webhook_url", "verifier_token", "cloudevents",
                   "access_token_ttl", "refresh_rotate_after", "time_scale")
PATH_ENTITIES = {t.lower(): t for t in ENTITY_TYPES}
CDC_LOOKBACK = 30 * 86400
CDC_MAX = 1000
MIN_MINOR_VERSION = 75


def parse_latency(value: Any) -> tuple[float, float] | None:
    """``None`` / ``0`` / ``"100-400"`` / ``250`` / ``(100, 400)`` -> (lo, hi) milliseconds or None."""
    if value in (None, "", 0, "0", False):
        return None
    if isinstance(value, list | tuple):
        lo, hi = float(value[0]), float(value[1])
    elif isinstance(value, str) and "-" in value:
        a, b = value.split("-", 1)
        lo, hi = float(a), float(b)
    else:
        lo = hi = float(value)
    if lo < 0 or hi < lo:
        raise ValueError(f"bad latency range: {value!r}")
    return (lo, hi)


def new_realm_id() -> str:
    return str(9130350000000000 + secrets.randbelow(10**15))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self._open_lock:
            self._open.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close every open (keep-alive) connection: a stopped server must not go on answering on them."""
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Abort(Exception):
    """Drop the connection without a response."""


class BadFraming(Exception):
    """The request body can't be delimited (bad Content-Length, chunk syntax, unknown transfer coding)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


MAX_BODY = 50 * 1024 * 1024  # refuse bodies above this (QBO documents no limit; this guards the process)
# what QBO's API answers carry (samples/http_headers_examples.json, cdc_200)
API_CACHE_HEADERS = {"Expires": "0", "Cache-Control": "max-age=0, no-cache, no-store, must-revalidate, private"}


class Sandbox:
    """A local QuickBooks Online server.

    ``Sandbox(host="127.0.0.1", port=0, realms=(), starter_data=False, client_id=None, client_secret=None,
    webhook_url=None, verifier_token=None, cloudevents=False, latency_ms=None, rate_limit=500, concurrency=10,
    batch_rate=40, batch_size=30, access_token_ttl=3600, refresh_rotate_after=86400, time_scale=1.0, state_file=None,
    tax_model="none", custom_txn_numbers=None, tax_rates=None, clock=None, verbose=False, **rates)``, where
    ``rates`` are the rate options of :mod:`.faults` (``fault_rate=0.1`` ...: the share of calls served that fault).

    Use ``start()``/``stop()`` or ``with Sandbox(...) as sb:``. ``base_url`` is the root for every URL:
    ``{base_url}/v3/company/{realmId}/...`` (API), ``{base_url}/oauth2/v1/tokens/bearer`` and ``/revoke``,
    ``{base_url}/connect/oauth2`` (authorize; approves at once), ``{base_url}/_sandbox/...`` (observability).

    Test helpers: ``create_realm()``, ``configure(realm_id=None, **options)``, ``set_tax_rates(realm_id, table)``,
    ``reset(realm_id)``,
    ``stats(realm_id)``, ``issue_tokens(realm_id)``, ``expire_access_tokens(realm_id)``, ``advance(seconds)``
    (moves the sandbox clock) and ``wait_for_webhooks()``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, realms: Iterable[str] = (),
                 starter_data: bool = False, client_id: str | None = None, client_secret: str | None = None,
                 webhook_url: str | None = None, verifier_token: str | None = None, cloudevents: bool = False,
                 latency_ms: Any = None, rate_limit: int | None = 500, concurrency: int | None = 10,
                 batch_rate: int | None = 40, batch_size: int = 30, access_token_ttl: float = 3600,
                 refresh_rotate_after: float = 86400, time_scale: float = 1.0,
                 state_file: str | None = None, tax_model: str = "none", custom_txn_numbers: bool | None = None,
                 tax_rates: dict | None = None, clock: Clock | None = None, verbose: bool = False,
                 **rates: float):
        unknown = sorted(set(rates) - set(faults.RATE_OPTIONS))
        if unknown:
            raise TypeError(f"Sandbox() got an unexpected keyword argument {unknown[0]!r}")
        self.options: dict[str, Any] = dict(DEFAULTS)
        self.options.update(
            host=host, port=port, realms=tuple(realms), starter_data=starter_data, client_id=client_id,
            client_secret=client_secret, webhook_url=webhook_url, verifier_token=verifier_token,
            cloudevents=cloudevents, latency_ms=parse_latency(latency_ms), rate_limit=rate_limit,
            concurrency=concurrency, batch_rate=batch_rate, batch_size=batch_size,
            **{option: faults.check_rate(option, value) for option, value in rates.items()},
            access_token_ttl=access_token_ttl,
            refresh_rotate_after=refresh_rotate_after, time_scale=float(time_scale), state_file=state_file,
            tax_model=tax.check_model(tax_model), custom_txn_numbers=_tri_state(custom_txn_numbers))
        if tax_rates is not None:
            tax.parse_rates(tax_rates)  # fail at construction, not on the first realm
        self._tax_rates = tax_rates
        if self.options["time_scale"] <= 0:
            raise ValueError("time_scale must be > 0")
        self.verbose = verbose
        self.clock = clock or Clock()
        self.realms: dict[str, Realm] = {}
        self.limiters: dict[str, RealmLimiter] = {}
        self.default_realm: str | None = None
        self._realms_lock = threading.Lock()
        self.oauth = OAuth(self)
        self.webhooks = Dispatcher(self)
        self.global_stats: dict[str, int] = {"oauth": 0, "unauthorized": 0, "other": 0}
        self.scripts = faults.Scripts()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._saver: threading.Thread | None = None
        if state_file and os.path.exists(state_file):
            self._load_state(state_file)
        for rid in self.options["realms"]:
            if rid not in self.realms:
                self.create_realm(rid, starter_data=starter_data)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Sandbox:
        handler = type("BoundHandler", (Handler,), {"sandbox": self})
        self._httpd = _Server((self.options["host"], self.options["port"]), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="qbo-sandbox-http", daemon=True)
        self._thread.start()
        self.webhooks.start()
        self._stopping.clear()
        if self.options["state_file"]:
            self._saver = threading.Thread(target=self._save_loop, name="qbo-sandbox-state", daemon=True)
            self._saver.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.drop_connections()
            self._httpd = None
        self.webhooks.stop()
        self._stopping.set()
        self._dirty.set()
        if self._saver is not None:
            self._saver.join(timeout=5)
            self._saver = None
        if self.options["state_file"]:
            self.save_state()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start and block until KeyboardInterrupt (used by the CLI)."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            return int(self.options["port"])
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        host = self.options["host"]
        if host in ("0.0.0.0", "", "::"):  # noqa: S104
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    # ------------------------------------------------------------------ realms
    def create_realm(self, realm_id: str | None = None, starter_data: bool | None = None,
                     company_name: str | None = None) -> str:
        """Create an empty company (income account + CompanyInfo), optionally with starter data."""
        with self._realms_lock:
            rid = str(realm_id) if realm_id else new_realm_id()
            if rid in self.realms:
                return rid
            realm = Realm(rid)
            realm.opt = self._realm_opt(realm)
            now = self.clock.time()
            with realm.lock:
                entities.bootstrap(realm, now, company_name)
                if self._tax_rates is not None:
                    tax.set_rates(realm, self._tax_rates, now)
                if starter_data if starter_data is not None else self.options["starter_data"]:
                    entities.starter_data(realm, now)
            self.realms[rid] = realm
            self.limiters[rid] = RealmLimiter()
            if self.default_realm is None:
                self.default_realm = rid
        self.mark_dirty()
        return rid

    def realm(self, realm_id: str) -> Realm:
        return self.realms[realm_id]

    def _realm_opt(self, realm: Realm) -> Any:
        return lambda key: self.opt(realm, key)

    def set_tax_rates(self, realm_id: str, table: dict) -> dict[str, str]:
        """Replace a company's per-state sales-tax table, e.g. ``{"CA": 8.25, "AZ": [7.1, 2],
        "NY": {"name": "New York City", "rates": [["NY State", 4], ["NYC", 4.5]]}}`` (percentages; a list is
        the component rates of one combined code). Returns ``{state: TaxCode Id}``. Company data, not an option:
        ``reset()`` keeps it and the state file saves it."""
        realm = self.realms[realm_id]
        with realm.lock:
            codes = tax.set_rates(realm, table, self.clock.time())
        self.mark_dirty()
        return codes

    def tax_rates(self, realm_id: str) -> dict[str, dict]:
        """The company's active table: ``{state: {"TaxCode": id, "name": ..., "rates": [[name, percent]]}}``."""
        realm = self.realms[realm_id]
        with realm.lock:
            return tax.rate_table(realm)

    # ------------------------------------------------------------------ runtime options
    def configure(self, realm_id: str | None = None, **options: Any) -> None:
        """Change limits, faults and other runtime options; with ``realm_id`` only for that realm."""
        allowed = REALM_OPTIONS if realm_id else RUNTIME_OPTIONS
        for key, value in options.items():
            if key not in allowed:
                raise TypeError(f"option {key!r} cannot be changed{' per realm' if realm_id else ''}")
            if key == "latency_ms":
                value = parse_latency(value)
            if key == "tax_model":
                value = tax.check_model(value)
            if key == "custom_txn_numbers":
                value = _tri_state(value)
            if key in faults.RATE_OPTIONS:
                value = faults.check_rate(key, value)
            if key == "time_scale" and float(value) <= 0:
                raise ValueError("time_scale must be > 0")
            if realm_id:
                self.realms[realm_id].overrides[key] = value
            else:
                self.options[key] = float(value) if key == "time_scale" else value
        self._refresh_preferences([self.realms[realm_id]] if realm_id else list(self.realms.values()))

    def _refresh_preferences(self, realms: list[Realm]) -> None:
        """Options that are company preferences show in each company's Preferences entity."""
        now = self.clock.time()
        for realm in realms:
            with realm.lock:
                tax.refresh_preferences(realm, now)

    def reset(self, realm_id: str) -> None:
        """Forget a realm's option overrides and scripted faults, and empty its throttle windows."""
        realm = self.realms[realm_id]
        realm.overrides.clear()
        self.scripts.clear(realm_id)
        self.limiters[realm_id].reset()
        self._refresh_preferences([realm])

    def opt(self, realm: Realm | None, key: str) -> Any:
        if realm is not None and key in realm.overrides:
            return realm.overrides[key]
        return self.options[key]

    def stats(self, realm_id: str | None = None) -> dict:
        """Counters for one realm, or global counters plus every realm's when ``realm_id`` is None."""
        if realm_id is not None:
            return {**stats_snapshot(self.realms[realm_id]), "scripted_pending": self.scripts.pending(realm_id)}
        return {"realms": {rid: self.stats(rid) for rid in list(self.realms)},
                "global": dict(self.global_stats), "webhooks": self.webhooks.stats(),
                "scripted_pending": self.scripts.pending()}

    # ------------------------------------------------------------------ scripted faults
    def fail_next(self, fault: str, times: int = 1, *, realm_id: str | None = None, method: str | None = None,
                  entity: str | None = None, operation: str | Iterable[str] | None = None,
                  path: str | None = None) -> dict:
        """Serve ``fault`` (a name of :data:`.faults.FAULTS`) to the next ``times`` API requests that match every
        filter given: ``realm_id``, ``method`` ("POST"), ``entity`` ("Customer"; a batch matches when one of its
        items names it, a query by its FROM, cdc by its ``entities``), ``operation`` (read, create, update,
        delete, void, query, cdc, batch, companyinfo, preferences, or "write" for any write; one or a list) and
        ``path`` (a glob after ``/v3/company/{realmId}``, e.g. ``"/customer/*"``). Scripts are consumed in the
        order they were added; a request refused by authentication or a throttle does not consume one. Returns
        the script (its ``id``, ``remaining`` ...)."""
        if realm_id is not None and realm_id not in self.realms:
            raise KeyError(f"unknown realm {realm_id!r}")
        return self.scripts.add(fault, times, realm=realm_id, method=method, entity=entity, operation=operation,
                                path=path).as_dict()

    def scripted_faults(self, realm_id: str | None = None) -> list[dict]:
        """The scripts still waiting (for one realm: its own and those for any realm)."""
        return self.scripts.pending(realm_id)

    def clear_scripted_faults(self, realm_id: str | None = None) -> int:
        """Drop the waiting scripts (only ``realm_id``'s own when given); returns how many were dropped."""
        return self.scripts.clear(realm_id)

    # ------------------------------------------------------------------ OAuth helpers
    def issue_tokens(self, realm_id: str, client_id: str | None = None) -> dict:
        """Mint a token pair for a realm without the browser flow (tests, demos)."""
        if realm_id not in self.realms:
            self.create_realm(realm_id)
        tokens = self.oauth.issue(realm_id, client_id or self.options["client_id"] or "sandbox-test-client")
        tokens["realmId"] = realm_id
        self.mark_dirty()
        return tokens

    def expire_access_tokens(self, realm_id: str) -> int:
        """Make every access token of the realm expired now (next API call gets 401)."""
        return self.oauth.expire_access_tokens(realm_id)

    def merge_customers(self, realm_id: str, from_id: str, into_id: str) -> dict:
        """The accountant merges customer ``from_id`` into ``into_id`` (as QBO's UI does; there is no API for it):
        transactions move, ``from_id`` is deleted, a ``Merge`` webhook goes out. Returns the surviving customer.
        Raises :class:`~qbo_sync.sandbox.util.QBOError` (unknown id, same id, sub-customers)."""
        realm = self.realms[realm_id]
        with realm.lock:
            _, keep, events = entities.merge_customer(realm, from_id, into_id, self.clock.time())
            keep = dict(keep)
        self.webhooks.emit(realm_id, events)
        self.mark_dirty()
        return keep

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock forward (token expiry, throttle windows, webhook retries, CDC)."""
        self.clock.advance(seconds)

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Block until every queued webhook event was delivered (True) or ``timeout`` passed."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.webhooks.idle():
                return True
            time.sleep(0.005)
        return self.webhooks.idle()

    # ------------------------------------------------------------------ state file
    def mark_dirty(self) -> None:
        if self.options["state_file"]:
            self._dirty.set()

    def _save_loop(self) -> None:
        while not self._stopping.is_set():
            self._dirty.wait()
            if self._stopping.is_set():
                return
            self._stopping.wait(0.5)  # debounce: collect a burst of writes into one save
            if self._stopping.is_set():
                return  # stop() saves
            self._dirty.clear()
            try:
                self.save_state()
            except Exception:  # pragma: no cover - disk trouble must not kill the server
                log.exception("saving sandbox state failed")

    def save_state(self, path: str | None = None) -> None:
        path = path or self.options["state_file"]
        if not path:
            return
        realms = []
        for realm in list(self.realms.values()):
            with realm.lock:
                realms.append(copy.deepcopy(realm.to_state()))
        data = {"version": 1, "default_realm": self.default_realm, "realms": realms,
                "oauth": self.oauth.to_state(), "clock_offset": self.clock.offset}
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(state_dumps(data))
        os.replace(tmp, path)

    def _load_state(self, path: str) -> None:
        with open(path, encoding="utf-8") as fh:
            data = state_loads(fh.read())
        for rdata in data.get("realms", []):
            realm = Realm.from_state(rdata)
            realm.opt = self._realm_opt(realm)
            tax.bootstrap(realm, self.clock.time())  # companies saved before the sandbox knew tax
            self.realms[realm.id] = realm
            self.limiters[realm.id] = RealmLimiter()
        self.default_realm = data.get("default_realm") or next(iter(self.realms), None)
        self.oauth.load_state(data.get("oauth", {}))
        # keep time monotonic for the stored companies if the previous run had advanced its clock
        self.clock.offset = max(self.clock.offset, float(data.get("clock_offset", 0.0)))


_FROM = re.compile(r"\bfrom\s+(\w+)", re.IGNORECASE)


def _from_entity(text: str) -> str:
    """The entity a query reads (its FROM), or "" when there is none."""
    m = _FROM.search(text)
    return query.ENTITY_NAMES.get(m.group(1).lower(), m.group(1)) if m else ""


def _tri_state(value: Any) -> bool | None:
    """``custom_txn_numbers``: True/"on", False/"off", or None/"lenient" (the sandbox's historical default)."""
    if value is None or value is True or value is False:
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    if text in ("", "none", "lenient", "default"):
        return None
    raise ValueError(f"custom_txn_numbers must be on, off or lenient, not {value!r}")


# ====================================================================== HTTP


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
                self._api(method, segs[2], segs[3:], params, body, parts.path)
            elif parts.path.startswith("/oauth2/") or parts.path.startswith("/connect/") \
                    or parts.path.startswith("/.well-known/"):
                self.sandbox.global_stats["oauth"] += 1
                self._oauth(method, parts.path.rstrip("/"), params, body)
            elif parts.path.startswith("/_sandbox/"):
                self._admin(method, parts.path.rstrip("/"), params, body)
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

    # ------------------------------------------------------------------ QBO API
    def _api(self, method: str, realm_id: str, rest: list[str], params: dict, body: bytes, path: str) -> None:
        sb = self.sandbox
        now = sb.clock.time()
        token = self.bearer_token()
        problem = sb.oauth.check_access(token, realm_id)
        realm = sb.realms.get(realm_id)
        if problem or realm is None:
            sb.global_stats["unauthorized"] += 1
            if realm is not None:
                realm.stats["auth_failures"] += 1
            if problem == "forbidden" or (problem is None and realm is None):
                self.reply_json(403, auth_fault(403, token, False, now))
            else:
                self.reply_json(401, auth_fault(401, token, problem == "expired", now),
                           headers={"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'})
            return
        kind = self._kind(method, rest, params, body)
        limiter = sb.limiters[realm_id]
        span = 60.0 / sb.options["time_scale"]
        hit = limiter.acquire(now, span, sb.opt(realm, "rate_limit"), sb.opt(realm, "concurrency"),
                              kind == "batch", sb.opt(realm, "batch_rate"))
        if hit:
            realm.stats["throttled"][hit] += 1
            self.reply(429, throttle_body(fmt_time(now)), content_type="application/xml")
            return
        self._kind_final = kind
        self._counted: Realm | None = realm
        released = False
        try:
            mv = params.get("minorversion")
            if mv is not None and mv.isdigit() and int(mv) < MIN_MINOR_VERSION:
                realm.stats["requests"]["old_minorversion"] += 1
            scripted = self._scripted(realm, method, rest, params, body, kind) if sb.scripts else None
            self._inject_before(realm, scripted)
            status, payload, committed, events = self._handle(realm, kind, method, rest, params, body, path)
            if events:
                sb.webhooks.emit(realm_id, events)
            if committed:
                sb.mark_dirty()
            if scripted is not None:
                if scripted.after:
                    self._serve_fault(realm, scripted, scripted=True)
            elif committed:
                for fault in faults.draw(faults.AFTER, lambda option: sb.opt(realm, option)):
                    self._serve_fault(realm, fault)
            # bookkeeping before the response leaves: the client may act on it at once
            self._count()
            released = True
            limiter.release()
            self.reply(status, payload, headers={"Qbo-Version": "sandbox",
                                                 "Service-Time": f"total={int((sb.clock.time() - now) * 1000)}"})
        finally:
            self._count()
            if not released:
                limiter.release()

    def _count(self) -> None:
        realm, self._counted = self._counted, None
        if realm is not None:
            realm.stats["requests"][self._kind_final] += 1

    def _scripted(self, realm: Realm, method: str, rest: list[str], params: dict, body: bytes,
                  kind: str) -> faults.Fault | None:
        """The scripted fault this request takes, if one matches it."""
        if kind == "create" and body:
            try:
                data = loads(body)
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("Id") not in (None, ""):
                kind = "update"

        def named() -> frozenset[str]:
            if kind == "batch":
                try:
                    items = loads(body).get("BatchItemRequest") or []
                    return frozenset(_from_entity(str(i["Query"])) if "Query" in i else
                                     next(k for k in i if k not in ("bId", "operation", "optionsData"))
                                     for i in items if isinstance(i, dict))
                except (ValueError, AttributeError, StopIteration, TypeError):
                    return frozenset()
            if kind == "query":
                text = params.get("query") if method == "GET" else body.decode("utf-8", "replace")
                return frozenset([_from_entity(text or "")])
            if kind == "cdc":
                return frozenset(n.strip() for n in params.get("entities", "").split(","))
            return frozenset([PATH_ENTITIES.get(rest[0].lower(), rest[0])] if rest else [])

        request = faults.Request(realm.id, method, "/" + "/".join(rest), kind, named)
        return self.sandbox.scripts.take(request)

    def _inject_before(self, realm: Realm, scripted: faults.Fault | None) -> None:
        """A scripted fault decides the request's fate; else the rate options are drawn."""
        sb = self.sandbox
        if scripted is not None:
            if not scripted.after:
                self._serve_fault(realm, scripted, scripted=True)
        else:
            for fault in faults.draw(faults.BEFORE, lambda option: sb.opt(realm, option)):
                self._serve_fault(realm, fault)
        lat = sb.opt(realm, "latency_ms")
        if lat:
            time.sleep(random.uniform(*lat) / 1000.0 / sb.options["time_scale"])

    def _serve_fault(self, realm: Realm, fault: faults.Fault, scripted: bool = False) -> None:
        """Count and serve one fault; a final one ends the request (no normal answer follows)."""
        faults.record(realm.stats, fault)
        if scripted:
            realm.stats["scripted"][fault.name] += 1
        if fault.gate:
            self._counted = None  # refused at the gate, as a real 401/429: not a served request
        else:
            self._count()
        fault.serve(self, realm)
        if fault.final:
            raise Abort()

    def bearer_token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else None

    @staticmethod
    def _kind(method: str, rest: list[str], params: dict, body: bytes) -> str:
        head = rest[0].lower() if rest else ""
        if head in ("query", "cdc", "batch", "companyinfo", "preferences"):
            return head
        if method == "GET":
            return "read"
        op = (params.get("operation") or "").lower()
        if op == "delete":
            return "delete"
        if op == "void" or (op == "update" and params.get("include") == "void"):
            return "void"
        if op == "update":
            return "update"
        return "create"  # or update, decided by the body's Id once parsed (see _handle)

    def _handle(self, realm: Realm, kind: str, method: str, rest: list[str], params: dict, body: bytes,
                path: str) -> tuple[int, bytes, bool, list]:
        """Returns (status, body bytes, committed_write, webhook events)."""
        sb = self.sandbox
        try:
            if kind == "query":
                text = params.get("query") if method == "GET" else body.decode("utf-8", "replace")
                if not text:
                    raise required("query")
                with realm.lock:
                    resp = query.execute(realm, text)
                    return 200, dumps({"QueryResponse": resp, "time": fmt_time(sb.clock.time())}), False, []
            if kind == "cdc":
                return self._cdc(realm, params)
            if kind == "preferences":
                if method != "GET" or len(rest) != 1:
                    raise self._unsupported(path)
                with realm.lock:
                    prefs = realm.entities["Preferences"]["1"]
                    return 200, dumps({"Preferences": prefs, "time": fmt_time(sb.clock.time())}), False, []
            if kind == "companyinfo":
                if method != "GET" or len(rest) != 2 or rest[1] not in (realm.id, "1"):
                    raise self._unsupported(path)
                with realm.lock:
                    info = realm.entities["CompanyInfo"]["1"]
                    return 200, dumps({"CompanyInfo": info, "time": fmt_time(sb.clock.time())}), False, []
            if kind == "batch":
                if method != "POST":
                    raise self._unsupported(path)
                return self._batch(realm, params, body)
            etype = PATH_ENTITIES.get(rest[0].lower()) if rest else None
            if etype is None or etype == "CompanyInfo":
                raise self._unsupported(path)
            if kind == "read":
                if len(rest) != 2:
                    raise self._unsupported(path)
                with realm.lock:
                    obj = entities.read(realm, etype, rest[1])
                    return 200, dumps({etype: obj, "time": fmt_time(sb.clock.time())}), False, []
            if method != "POST" or len(rest) != 1:
                raise self._unsupported(path)
            requestid = params.get("requestid")
            if requestid:
                if len(requestid) > 50:
                    raise QBOError("2010", "Request has invalid or unsupported property",
                                   "requestid is longer than 50 characters")
                with realm.lock:
                    cached = realm.requestids.get(requestid)
                if cached is not None:
                    realm.stats["deduplicated"] += 1
                    return cached[0], cached[1], False, []
            try:
                data = loads(body) if body else None
            except ValueError:
                raise QBOError("2010", "Request has invalid or unsupported property",
                               "Unable to parse the request body as JSON") from None
            if kind == "create" and isinstance(data, dict) and data.get("Id") not in (None, ""):
                kind = self._kind_final = "update"
            with realm.lock:
                if requestid and requestid in realm.requestids:  # a concurrent duplicate won the race
                    realm.stats["deduplicated"] += 1
                    cached = realm.requestids[requestid]
                    return cached[0], cached[1], False, []
                now = sb.clock.time()
                op = {"create": entities.create, "update": entities.update, "delete": entities.delete,
                      "void": entities.void}[kind]
                include = frozenset(v.strip().lower() for v in params.get("include", "").split(",") if v.strip())
                rtype, obj, events = op(realm, etype, data, now, include)
                payload = dumps({rtype: obj, "time": fmt_time(now)})
                if requestid:
                    realm.remember(requestid, (200, payload))
            return 200, payload, True, events
        except QBOError as err:
            return err.status, dumps({"Fault": err.fault(), "time": fmt_time(sb.clock.time())}), False, []

    def _unsupported(self, path: str) -> QBOError:
        host = self.headers.get("Host", "localhost")
        return unsupported(f"Operation Could not find resource for relative : {path} of full path: "
                           f"http://{host}{path} is not supported.")

    # ------------------------------------------------------------------ CDC
    def _cdc(self, realm: Realm, params: dict) -> tuple[int, bytes, bool, list]:
        sb = self.sandbox
        names = params.get("entities")
        since_text = params.get("changedSince")
        if not names:
            raise required("entities")
        if not since_text:
            raise required("changedSince")
        try:
            since = int(parse_datetime(since_text))
        except ValueError:
            raise QBOError("2010", "Request has invalid or unsupported property",
                           f"Invalid changedSince: {since_text}") from None
        now = sb.clock.time()
        if now - since > CDC_LOOKBACK:
            raise unsupported(f"Operation cdc with changedSince date {since_text} which is older than fixed days "
                              "is not supported.")
        wanted: list[str] = []
        for name in names.split(","):
            etype = query.ENTITY_NAMES.get(name.strip().lower())
            if etype is None:
                raise QBOError("4001", "Invalid query", f"QueryValidationError: invalid entity: {name.strip()}")
            if etype in NOT_IN_CDC:
                raise unsupported(f"Operation cdc is not supported for {etype}.")
            if etype not in wanted:
                wanted.append(etype)
        with realm.lock:
            found: list[tuple[float, str, int, dict]] = []  # (ts, etype, live=0/deleted=1, obj)
            for etype in wanted:
                for obj in realm.entities[etype].values():
                    if int(obj.get("_upd", 0)) >= since:
                        found.append((obj["_upd"], etype, 0, obj))
                for dtype, oid, ts in realm.deleted:
                    if dtype == etype and int(ts) >= since:
                        stub = {"domain": "QBO", "status": "Deleted", "Id": oid,
                                "MetaData": {"LastUpdatedTime": fmt_meta(ts)}}
                        found.append((ts, etype, 1, stub))
            found.sort(key=lambda x: x[0])
            found = found[:CDC_MAX]
            groups = []
            for etype in wanted:
                objs = [o for ts, t, dead, o in sorted((f for f in found if f[1] == etype),
                                                       key=lambda f: (f[2], f[0]))]
                if objs:
                    groups.append({etype: objs, "startPosition": 1, "maxResults": len(objs)})
                else:
                    groups.append({})
            if not groups:
                groups = [{}]
            payload = dumps({"CDCResponse": [{"QueryResponse": groups}], "time": fmt_time(now)})
        return 200, payload, False, []

    # ------------------------------------------------------------------ batch
    def _batch(self, realm: Realm, params: dict, body: bytes) -> tuple[int, bytes, bool, list]:
        sb = self.sandbox
        try:
            data = loads(body) if body else None
        except ValueError:
            data = None
        items = data.get("BatchItemRequest") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            raise required("BatchItemRequest")
        limit = int(sb.opt(realm, "batch_size") or 30)
        if len(items) > limit:
            raise QBOError("1001", "Batch size limit exceeded",
                           f"The batch request has {len(items)} items; the maximum is {limit}.")
        requestid = params.get("requestid")
        if requestid and len(requestid) > 36:
            raise QBOError("2010", "Request has invalid or unsupported property",
                           "requestid for a batch request is longer than 36 characters")
        lat = sb.opt(realm, "latency_ms")
        out: list[dict] = []
        events: list = []
        committed = False
        for item in items:
            if lat:
                time.sleep(random.uniform(*lat) / 5000.0 / sb.options["time_scale"])
            bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
            key = f"{requestid}:{bid}" if requestid and bid else None
            with realm.lock:
                if key and key in realm.batch_items:
                    realm.stats["deduplicated"] += 1
                    out.append(realm.batch_items[key])
                    continue
                resp, evs, wrote = self._batch_item(realm, item, bid)
                # serialise now: later items must not change what this item returned
                resp = json.loads(dumps(resp))
                if key and "Fault" not in resp and wrote:
                    realm.remember_item(key, resp)
            out.append(resp)
            events += evs
            committed = committed or wrote
        return 200, dumps({"BatchItemResponse": out, "time": fmt_time(sb.clock.time())}), committed, events

    def _batch_item(self, realm: Realm, item: Any, bid: str) -> tuple[dict, list, bool]:
        sb = self.sandbox
        try:
            if not isinstance(item, dict):
                raise QBOError("2010", "Request has invalid or unsupported property", "Invalid batch item")
            if "Query" in item:
                return {"bId": bid, "QueryResponse": query.execute(realm, str(item["Query"]))}, [], False
            etypes = [k for k in item if k not in ("bId", "operation", "optionsData")]
            if len(etypes) != 1:
                raise QBOError("2010", "Request has invalid or unsupported property", "Invalid batch item")
            etype = etypes[0]
            if etype not in entities.KNOWN:
                raise unsupported(f"Operation {item.get('operation', 'create')} is not supported for {etype}.")
            op_name = str(item.get("operation") or "create").lower()
            ops = {"create": entities.create, "update": entities.update, "delete": entities.delete,
                   "void": entities.void}
            if op_name not in ops:
                raise unsupported(f"Operation {op_name} is not supported.")
            include = frozenset(v.strip().lower() for v in str(item.get("optionsData") or "").split(",")
                                if v.strip())
            rtype, obj, events = ops[op_name](realm, etype, item[etype], sb.clock.time(), include)
            realm.stats["requests"][f"batch_{op_name}"] += 1
            return {"bId": bid, rtype: obj}, events, True
        except QBOError as err:
            return {"bId": bid, "Fault": err.fault()}, [], False

    # ------------------------------------------------------------------ OAuth
    def _base(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.sandbox.base_url

    def _oauth(self, method: str, path: str, params: dict, body: bytes) -> None:
        sb = self.sandbox
        nostore = {"Cache-Control": "no-cache, no-store", "Pragma": "no-cache"}
        try:
            if path in ("/.well-known/openid_configuration", "/.well-known/openid_sandbox_configuration"):
                base = self._base()
                self.reply_json(200, {
                    "issuer": base, "authorization_endpoint": f"{base}/connect/oauth2",
                    "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
                    "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
                    "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
                    "jwks_uri": f"{base}/oauth2/v1/keys", "response_types_supported": ["code"],
                    "grant_types_supported": ["authorization_code", "refresh_token"],
                    "scopes_supported": ["openid", "email", "profile", "address", "phone",
                                         "com.intuit.quickbooks.accounting", "com.intuit.quickbooks.payment"],
                })
                return
            if path == "/connect/oauth2" and method == "GET":
                self._authorize(params)
                return
            if method != "POST":
                raise OAuthError(405, "invalid_request", "method not allowed")
            form = self._form(body)
            client_id = sb.oauth.check_client(self.headers.get("Authorization"), form)
            if path == "/oauth2/v1/tokens/bearer":
                grant = form.get("grant_type")
                if grant == "authorization_code":
                    tokens = sb.oauth.exchange_code(client_id, form.get("code", ""), form.get("redirect_uri", ""))
                elif grant == "refresh_token":
                    tokens = sb.oauth.refresh(client_id, form.get("refresh_token", ""))
                else:
                    raise OAuthError(400, "unsupported_grant_type")
                sb.mark_dirty()
                self.reply_json(200, tokens, headers=nostore)
            elif path == "/oauth2/v1/tokens/revoke":
                sb.oauth.revoke(form.get("token", ""))
                sb.mark_dirty()
                self.reply(200, b"", headers=nostore)
            else:
                self.reply_json(404, {"error": "not_found"})
        except OAuthError as err:
            headers = dict(nostore)
            if err.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="Intuit"'
            self.reply_json(err.status, err.body(), headers=headers)

    @staticmethod
    def _form(body: bytes) -> dict[str, str]:
        text = body.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
                return {k: str(v) for k, v in data.items()}
            except ValueError:
                return {}
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def _authorize(self, params: dict) -> None:
        sb = self.sandbox
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri:
            self.reply_json(400, {"error": "invalid_request", "error_description": "redirect_uri is required"})
            return
        back: dict[str, str] = {}
        if params.get("response_type", "code") != "code":
            back = {"error": "unsupported_response_type"}
        else:
            realm_id = params.get("realm_id") or params.get("realmId")
            if realm_id:
                realm_id = sb.create_realm(realm_id)
            else:
                realm_id = sb.default_realm or sb.create_realm()
            try:
                code = sb.oauth.authorize(params.get("client_id", ""), redirect_uri, params.get("scope", ""),
                                          realm_id)
                back = {"code": code, "realmId": realm_id}
            except OAuthError as err:
                back = {"error": err.error}
        if "state" in params:
            back["state"] = params["state"]
        parts = urlsplit(redirect_uri)
        q = parts.query + ("&" if parts.query else "") + urlencode(back)
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, q, ""))
        self.reply(302, b"", content_type="text/html", headers={"Location": location})

    # ------------------------------------------------------------------ observability / admin
    def _admin(self, method: str, path: str, params: dict, body: bytes) -> None:
        sb = self.sandbox
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            self.reply_json(400, {"error": "invalid JSON"})
            return
        try:
            if path == "/_sandbox/stats" and method == "GET":
                realm_id = params.get("realm")
                if realm_id and realm_id not in sb.realms:
                    self.reply_json(404, {"error": "unknown realm"})
                    return
                self.reply_json(200, sb.stats(realm_id))
            elif path == "/_sandbox/health":
                self.reply_json(200, {"ok": True, "realms": len(sb.realms)})
            elif path == "/_sandbox/realms" and method == "POST":
                rid = sb.create_realm(data.get("realm_id") or data.get("realmId"),
                                      starter_data=data.get("starter_data"))
                out: dict[str, Any] = {"realmId": rid}
                if data.get("tokens"):
                    out["tokens"] = sb.issue_tokens(rid)
                self.reply_json(200, out)
            elif path == "/_sandbox/tokens" and method == "POST":
                rid = data.get("realm_id") or data.get("realmId") or sb.default_realm or sb.create_realm()
                self.reply_json(200, sb.issue_tokens(rid))
            elif path == "/_sandbox/configure" and method == "POST":
                realm_id = data.pop("realm_id", None) or data.pop("realmId", None)
                sb.configure(realm_id, **data)
                self.reply_json(200, {"ok": True})
            elif path == "/_sandbox/tax-rates" and method == "POST":
                realm_id = data.get("realm_id") or data.get("realmId") or ""
                self.reply_json(200, {"codes": sb.set_tax_rates(realm_id, data.get("rates"))})
            elif path == "/_sandbox/tax-rates" and method == "GET":
                self.reply_json(200, sb.tax_rates(params.get("realm", "")))
            elif path == "/_sandbox/reset" and method == "POST":
                sb.reset(data.get("realm_id") or data.get("realmId") or params.get("realm", ""))
                self.reply_json(200, {"ok": True})
            elif path == "/_sandbox/expire-tokens" and method == "POST":
                n = sb.expire_access_tokens(data.get("realm_id") or data.get("realmId") or "")
                self.reply_json(200, {"expired": n})
            elif path == "/_sandbox/merge" and method == "POST":
                realm_id = data.get("realm_id") or data.get("realmId") or ""
                if realm_id not in sb.realms:
                    self.reply_json(404, {"error": "unknown realm"})
                    return
                try:
                    keep = sb.merge_customers(realm_id, data["from_id"], data["into_id"])
                except QBOError as err:
                    self.reply_json(400, {"error": err.fault()["Error"][0]["Detail"]})
                    return
                self.reply_json(200, {"Customer": keep})
            elif path == "/_sandbox/faults" and method == "POST":
                realm_id = data.pop("realm_id", None) or data.pop("realmId", None)
                fault = data.pop("fault")
                script = sb.fail_next(fault, data.pop("times", 1), realm_id=realm_id, **data)
                self.reply_json(200, {"script": script})
            elif path == "/_sandbox/faults" and method == "GET":
                registry = [{"name": f.name, "option": f.option, "does": f.does, "answer": f.answer,
                             "stat": f.stat, "stat_key": f.stat_key} for f in faults.FAULTS]
                self.reply_json(200, {"faults": registry, "scripted_pending": sb.scripted_faults(params.get("realm"))})
            elif path == "/_sandbox/faults" and method == "DELETE":
                realm_id = params.get("realm") or data.get("realm_id") or data.get("realmId")
                self.reply_json(200, {"cleared": sb.clear_scripted_faults(realm_id)})
            elif path == "/_sandbox/advance" and method == "POST":
                sb.advance(float(data.get("seconds", 0)))
                self.reply_json(200, {"offset": sb.clock.offset})
            else:
                self.reply_json(404, {"error": "not_found"})
        except (KeyError, TypeError, ValueError) as exc:
            self.reply_json(400, {"error": str(exc)})
