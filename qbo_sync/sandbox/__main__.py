"""``python -m qbo_sync.sandbox``: run the QBO sandbox until Ctrl-C.

``manage.py qbo_sync sandbox`` takes the same options (``add_arguments``) and runs ``serve(sandbox_from(args))``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import faults
from .server import DEFAULTS, Sandbox, parse_latency
from .tax import parse_rates_arg

DESCRIPTION = ("A local QuickBooks Online server: the v3 API under /v3/company/{realmId}/..., OAuth at "
               "/connect/oauth2 (approves at once), /oauth2/v1/tokens/bearer and /oauth2/v1/tokens/revoke, "
               "observability at /_sandbox/stats. Defaults are QBO's own limits with latency and faults off.")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qbo_sync.sandbox", description=DESCRIPTION,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The sandbox's options, added to ``p`` (this module's parser, or ``manage.py qbo_sync sandbox``'s)."""
    d = DEFAULTS
    p.add_argument("--host", default=d["host"], help="interface to listen on")
    p.add_argument("--port", type=int, default=8765, help="TCP port (0 = any free port)")
    p.add_argument("--realm", action="append", default=[], metavar="ID",
                   help="realm (company) to create at start; repeatable. Each is an empty company with an income "
                        "account and CompanyInfo")
    p.add_argument("--starter-data", action="store_true",
                   help="give new realms a few customers, items, invoices and payments")
    p.add_argument("--client-id", default=None,
                   help="OAuth client id; when given (with --client-secret) other credentials get invalid_client; "
                        "when not, any are accepted")
    p.add_argument("--client-secret", default=None, help="OAuth client secret")
    p.add_argument("--webhook-url", default=None, help="where to POST webhook notifications")
    p.add_argument("--verifier-token", default=None, help="webhook verifier token (HMAC-SHA256 key)")
    p.add_argument("--cloudevents", action="store_true", help="send webhooks in the CloudEvents format (array)")
    p.add_argument("--latency-ms", default=None, metavar="LO-HI",
                   help="added latency per call, e.g. 100-400 (a fifth of it more per batch item)")
    p.add_argument("--rate-limit", type=int, default=d["rate_limit"], help="requests per minute per realm (0=off)")
    p.add_argument("--concurrency", type=int, default=d["concurrency"], help="requests in flight per realm (0=off)")
    p.add_argument("--batch-rate", type=int, default=d["batch_rate"], help="batch calls per minute per realm (0=off)")
    p.add_argument("--batch-size", type=int, default=d["batch_size"], help="maximum items in one batch call")
    for option in faults.RATE_OPTIONS:  # one flag per rate option of the fault registry
        p.add_argument(f"--{option.replace('_', '-')}", type=float, default=0.0, metavar="SHARE",
                       help=faults.option_help(option))
    p.add_argument("--access-token-ttl", type=float, default=d["access_token_ttl"], help="access token lifetime, s")
    p.add_argument("--refresh-rotate-after", type=float, default=d["refresh_rotate_after"],
                   help="age (s) after which a refresh returns a new refresh token")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="divide every per-minute window, token lifetime, retry delay and latency by this")
    p.add_argument("--state", default=None, metavar="FILE", help="load state at start, save on change and exit")
    p.add_argument("--tax-model", choices=("none", "automated", "manual"), default="none",
                   help="sales tax: none (TotalTax 0), automated (QBO computes from the ship-to state) or manual "
                        "(the invoice names TxnTaxDetail.TxnTaxCodeRef)")
    p.add_argument("--tax-rate", action="append", default=[], metavar="STATE=PCT[+PCT...]",
                   help="a state's sales tax in percent, '+' between the component rates of a combined code "
                        "(repeatable; replaces the default table CA=8, AZ=7.1+2 in new companies)")
    p.add_argument("--custom-txn-numbers", choices=("on", "off", "lenient"), default="lenient",
                   help="invoice numbers: on = sent DocNumber kept and duplicates refused (6140) unless "
                        "include=allowduplicatedocnum; off = QBO numbers invoices itself; lenient = sent kept, "
                        "omitted assigned, no duplicate check")
    p.add_argument("--verbose", action="store_true", help="log every request")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        sb = sandbox_from(args)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    serve(sb)
    return 0


def sandbox_from(args: argparse.Namespace) -> Sandbox:
    """The sandbox the parsed options describe; a ValueError names the option it refuses."""
    try:
        parse_latency(args.latency_ms)
    except ValueError as exc:
        raise ValueError(f"--latency-ms: {exc}") from None
    for option in faults.RATE_OPTIONS:
        try:
            faults.check_rate(option, getattr(args, option))
        except ValueError as exc:
            raise ValueError(f"--{option.replace('_', '-')}: {exc}") from None
    try:
        tax_rates = parse_rates_arg(args.tax_rate) if args.tax_rate else None
    except ValueError as exc:
        raise ValueError(f"--tax-rate: {exc}") from None
    return Sandbox(
        host=args.host, port=args.port, realms=args.realm, starter_data=args.starter_data,
        client_id=args.client_id, client_secret=args.client_secret, webhook_url=args.webhook_url,
        verifier_token=args.verifier_token, cloudevents=args.cloudevents, latency_ms=args.latency_ms,
        rate_limit=args.rate_limit, concurrency=args.concurrency, batch_rate=args.batch_rate,
        batch_size=args.batch_size, access_token_ttl=args.access_token_ttl,
        refresh_rotate_after=args.refresh_rotate_after,
        time_scale=args.time_scale, state_file=args.state, verbose=args.verbose, tax_model=args.tax_model,
        tax_rates=tax_rates, custom_txn_numbers=args.custom_txn_numbers,
        **{option: getattr(args, option) for option in faults.RATE_OPTIONS},
    )


def serve(sb: Sandbox) -> None:
    """Start ``sb``, print where it listens, and run until Ctrl-C."""
    sb.start()
    print(f"QBO sandbox listening on {sb.base_url}", flush=True)
    for rid in sb.realms:
        print(f"  realm {rid}: {sb.base_url}/v3/company/{rid}", flush=True)
    print(f"  authorize: {sb.base_url}/connect/oauth2  tokens: {sb.base_url}/oauth2/v1/tokens/bearer", flush=True)
    print(f"  stats: {sb.base_url}/_sandbox/stats", flush=True)
    try:
        import time

        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()


if __name__ == "__main__":
    sys.exit(main())
