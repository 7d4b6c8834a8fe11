"""The sandbox and its Python API (:class:`Sandbox`): options, realms, lifecycle, stats, scripted faults, the
state file. The HTTP side is ``handler.Handler`` and its route families in ``routes/``."""

from __future__ import annotations

import copy
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from typing import Any

from . import entities, faults, tax
from .handler import Handler
from .limits import RealmLimiter
from .oauth import OAuth
from .store import Realm, stats_snapshot
from .util import Clock, state_dumps, state_loads
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
    ``reset(realm_id)``, ``stats(realm_id)``, ``issue_tokens(realm_id)``, ``expire_access_tokens(realm_id)``,
    ``fail_next(fault, times, realm_id=..., entity=..., operation=...)`` (scripted faults; also
    ``scripted_faults()``, ``clear_scripted_faults()``), ``advance(seconds)`` (moves the sandbox clock) and
    ``wait_for_webhooks()``.
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
