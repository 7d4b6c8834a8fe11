from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from qbo_sync import crypto
from qbo_sync.cli import Subcommand
from qbo_sync.models import QboConnection


class RotateKeys(Subcommand):
    name = "rotate-keys"
    help = "Re-encrypt every stored QuickBooks token with the newest key in QBO_SYNC[\"TOKEN_KEYS\"]."

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> None:
        count = 0
        with transaction.atomic():
            for conn in QboConnection.objects.select_for_update().exclude(access_token_encrypted="",
                                                                          refresh_token_encrypted=""):
                conn.access_token_encrypted = crypto.rotate(conn.access_token_encrypted)
                conn.refresh_token_encrypted = crypto.rotate(conn.refresh_token_encrypted)
                conn.save(update_fields=["access_token_encrypted", "refresh_token_encrypted", "updated_at"])
                count += 1
        command.stdout.write(f"Re-encrypted the tokens of {count} connection(s) with the newest key.")
