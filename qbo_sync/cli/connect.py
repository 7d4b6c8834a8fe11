"""``qbo_sync connect --org ORG`` and ``qbo_sync disconnect --org ORG``."""

from __future__ import annotations

import argparse
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from django.core.management.base import BaseCommand, CommandError

from qbo_sync.cli import Subcommand, resolve_organizations
from qbo_sync.conf import qbo_settings
from qbo_sync.exceptions import QboSyncError


class Connect(Subcommand):
    name = "connect"
    help = (
        "Connect an organization to QuickBooks: prints the authorization URL and waits for the callback "
        "(with QBO_SYNC['ENVIRONMENT'] = 'local' it approves on the bundled sandbox by itself)."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--org", required=True, metavar="ORG", help="The organization to connect.")
        parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                            help="How long to wait for the browser callback (default 600).")
        parser.add_argument("--realm", metavar="ID",
                            help="Only with the bundled sandbox (ENVIRONMENT 'local'): the sandbox company to connect, "
                                 "created if it does not exist. Without it the sandbox's default company is "
                                 "connected, which only one organization can hold. With Intuit, the company is "
                                 "chosen on Intuit's consent page.")

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.models import QboConnection
        from qbo_sync.permissions import Actor
        from qbo_sync.services.connect import connection_summary
        from qbo_sync.services.operations import complete_connect, start_connect

        org = resolve_organizations(options["org"])[0]
        if options["timeout"] <= 0:
            raise CommandError("--timeout must be positive.")
        local = qbo_settings.ENVIRONMENT == "local"
        realm = options.get("realm")
        if realm is not None and not local:
            raise CommandError("--realm works only with the bundled sandbox (QBO_SYNC['ENVIRONMENT'] = 'local'); "
                               "with Intuit, the company is chosen on Intuit's consent page.")
        if realm is not None and not (realm.isascii() and realm.isdigit() and len(realm) <= 20):
            raise CommandError(f"--realm must be a QuickBooks company id (digits only); got {realm!r}.")
        started = time.time()
        try:
            url = start_connect(Actor.system("cli"), org)
        except QboSyncError as exc:
            raise CommandError(_one_line(exc)) from None
        if realm is not None:
            url += f"&{urlencode({'realm_id': realm})}"
        command.stdout.write(f"Authorize the connection of {org} at:\n{url}")
        if local:
            # The sandbox's consent page approves at once and redirects to our callback with code/state/realmId.
            try:
                response = requests.get(url, allow_redirects=False, timeout=qbo_settings.HTTP_TIMEOUT)
            except requests.RequestException as exc:
                raise CommandError(f"The QBO sandbox at {url.split('/connect')[0]} is not reachable "
                                   f"({type(exc).__name__}); start it with `manage.py qbo_sync sandbox`.") from None
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303, 307) or not location:
                raise CommandError(f"The QBO sandbox did not redirect (HTTP {response.status_code}).")
            params = {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}
            try:
                connection = complete_connect(Actor.system("cli"), params)
            except QboSyncError as exc:
                hint = ""
                held = QboConnection.objects.filter(
                    realm_id=params.get("realmId", ""),
                    status__in=[QboConnection.Status.CONNECTED, QboConnection.Status.NEEDS_REAUTH])
                if realm is None and held.exclude(organization=org).exists():
                    hint = (" The bundled sandbox connects its default company unless told otherwise: connect "
                            f"another one with `qbo_sync connect --org {options['org']} --realm ID` (any new id, "
                            "e.g. 9130350000000002).")
                raise CommandError(_one_line(exc) + hint) from None
            command.stdout.write(f"Connected: {connection_summary(connection)}.")
            return
        command.stdout.write(f"Waiting up to {int(options['timeout'])}s for the callback...")
        deadline = time.monotonic() + options["timeout"]
        while time.monotonic() < deadline:
            connection = QboConnection.objects.filter(organization=org).select_related("organization").first()
            if (connection is not None and connection.status == QboConnection.Status.CONNECTED
                    and connection.connected_at and connection.connected_at.timestamp() >= started):
                command.stdout.write(f"Connected: {connection_summary(connection)}.")
                return
            time.sleep(1.0)
        raise CommandError(f"No callback within {int(options['timeout'])}s; {org} is not connected. Run again.")


class Disconnect(Subcommand):
    name = "disconnect"
    help = "Revoke an organization's QuickBooks tokens and disconnect it (queued changes are kept)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--org", required=True, metavar="ORG", help="The organization to disconnect.")

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        from qbo_sync.permissions import Actor
        from qbo_sync.services.operations import disconnect

        org = resolve_organizations(options["org"])[0]
        try:
            connection = disconnect(Actor.system("cli"), org)
        except QboSyncError as exc:
            raise CommandError(_one_line(exc)) from None
        if connection is None:
            command.stdout.write(f"{org} was not connected to QuickBooks; nothing to do.")
        else:
            command.stdout.write(f"Disconnected {org} from QuickBooks (tokens revoked; queued changes kept).")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
