"""Encryption at rest for OAuth tokens (Fernet: AES-128-CBC + HMAC-SHA256, from ``cryptography``).

Keys come from ``QBO_SYNC["TOKEN_KEYS"]``, newest first. New values are encrypted with the first
key; any listed key decrypts. To rotate: put a new key first, keep the old ones after it, run
``manage.py qbo_sync rotate-keys`` (re-encrypts every stored token with the newest key), then drop the old keys.

A key is either a Fernet key (``Fernet.generate_key()``) or any other string of at least 32 characters, which is
stretched with SHA-256. With no key configured a key is derived from ``SECRET_KEY``: fine for development, flagged
by ``manage.py check --deploy`` (qbo_sync.W001).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from qbo_sync.conf import on_reload, qbo_settings
from qbo_sync.exceptions import QboConfigurationError


def _fernet_for(key: str) -> Fernet:
    try:
        raw = base64.urlsafe_b64decode(key.encode())
        if len(raw) == 32:
            return Fernet(key.encode())
    except (binascii.Error, ValueError):
        pass
    if len(key) < 32:
        raise QboConfigurationError(
            'Each QBO_SYNC["TOKEN_KEYS"] entry must be a Fernet key or a random string of at least 32 characters.'
        )
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


@lru_cache(maxsize=1)
def _multifernet() -> MultiFernet:
    keys = list(qbo_settings.TOKEN_KEYS or [])
    if not keys:
        keys = ["qbo_sync token key derived from SECRET_KEY: " + settings.SECRET_KEY]
    return MultiFernet([_fernet_for(k) for k in keys])


@on_reload  # new keys (or a new SECRET_KEY) take effect at once
def reset() -> None:
    _multifernet.cache_clear()


def encrypt(value: str) -> str:
    if not value:
        return ""
    return _multifernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    if not value:
        return ""
    try:
        return _multifernet().decrypt(value.encode()).decode()
    except InvalidToken:
        raise QboConfigurationError(
            'A stored QuickBooks token cannot be decrypted with any key in QBO_SYNC["TOKEN_KEYS"] '
            "(was a key removed before `manage.py qbo_sync rotate-keys` ran?). Reconnect the company "
            "or restore the old key."
        ) from None


def rotate(value: str) -> str:
    """Re-encrypt a stored value with the newest key."""
    if not value:
        return ""
    return _multifernet().rotate(value.encode()).decode()
