"""Throughput benchmark: ``python -m benchmarks.sandbox [--clients 10] [--seconds 5] [--kind read]``.

Starts a sandbox in a separate process (throttles off, latency off) unless ``--url`` names a running one,
then has N client threads, each with its own keep-alive connection, hammer one realm with simple requests
(``read`` = GET customer by id, ``query`` = a small SELECT, ``create`` = POST a customer, ``mix`` = all three)
and prints requests/second, errors and latency percentiles. Stdlib only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
from urllib.parse import quote, urlsplit


def _post_json(base: str, path: str, body: dict) -> dict:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read() or b"{}")
    conn.close()
    return data


def run(base: str, clients: int, seconds: float, kind: str) -> dict:
    created = _post_json(base, "/_sandbox/realms", {"tokens": True, "starter_data": True})
    realm, token = created["realmId"], created["tokens"]["access_token"]
    # no throttling for the benchmark realm: we measure the server, not QBO's limits
    _post_json(base, "/_sandbox/configure", {"realm_id": realm, "rate_limit": 0, "concurrency": 0,
                                             "latency_ms": None, "fault_rate": 0, "reset_rate": 0,
                                             "slow_rate": 0, "lost_response_rate": 0})
    parts = urlsplit(base)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    q = quote("select * from Customer where DisplayName = 'Cool Cars' and Active in (true, false)")
    stop_at = [0.0]
    counts = [0] * clients
    errors = [0] * clients
    lat: list[list[float]] = [[] for _ in range(clients)]
    start_gate = threading.Barrier(clients + 1)

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        k = 0
        start_gate.wait()
        while time.perf_counter() < stop_at[0]:
            which = kind if kind != "mix" else ("read", "query", "create")[k % 3]
            t0 = time.perf_counter()
            try:
                if which == "read":
                    conn.request("GET", f"/v3/company/{realm}/customer/1?minorversion=75", headers=headers)
                elif which == "query":
                    conn.request("GET", f"/v3/company/{realm}/query?query={q}&minorversion=75", headers=headers)
                else:
                    body = json.dumps({"DisplayName": f"Bench {n}-{k}"})
                    conn.request("POST", f"/v3/company/{realm}/customer?minorversion=75", body=body,
                                 headers={**headers, "Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors[n] += 1
            except (OSError, http.client.HTTPException):
                errors[n] += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            lat[n].append(time.perf_counter() - t0)
            counts[n] += 1
            k += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start_gate.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    total = sum(counts)
    all_lat = sorted(x for per in lat for x in per)

    def pct(p: float) -> float:
        return all_lat[min(len(all_lat) - 1, int(p * len(all_lat)))] * 1000 if all_lat else 0.0

    return {"kind": kind, "clients": clients, "seconds": round(elapsed, 2), "requests": total,
            "errors": sum(errors), "rps": round(total / elapsed, 1), "p50_ms": round(pct(0.5), 2),
            "p95_ms": round(pct(0.95), 2), "p99_ms": round(pct(0.99), 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sandbox", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="base URL of a running sandbox (default: start one in a subprocess)")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--kind", choices=("read", "query", "create", "mix"), default="read")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    proc = None
    base = args.url
    if not base:
        proc = subprocess.Popen([sys.executable, "-m", "qbo_sync.sandbox", "--port", "0"],
                                stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline() if proc.stdout else ""
        base = line.strip().split()[-1]
    try:
        result = run(base.rstrip("/"), args.clients, args.seconds, args.kind)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['rps']} requests/second ({result['kind']}, {result['clients']} clients, "
              f"{result['requests']} requests in {result['seconds']} s, {result['errors']} errors; "
              f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms)")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
