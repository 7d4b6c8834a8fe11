"""``manage.py check --deploy`` passes, warnings included, with the settings a production deployment gives through
the environment (batchly/settings.py reads every one of them)."""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def production_env() -> dict[str, str]:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QBO_", "SECURE_", "DJANGO_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "batchly.settings",
        "DEBUG": "false",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(50)),
        "ALLOWED_HOSTS": "batchly.example.com",
        "SECURE_SSL_REDIRECT": "true",
        "SESSION_COOKIE_SECURE": "true",
        "CSRF_COOKIE_SECURE": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "QBO_TOKEN_KEYS": Fernet.generate_key().decode(),
        "QBO_ENVIRONMENT": "production",
        "QBO_CLIENT_ID": "ABproductionClientId0123456789",
        "QBO_CLIENT_SECRET": secrets.token_urlsafe(30),
        "QBO_WEBHOOK_VERIFIER_TOKEN": secrets.token_hex(18),
    })
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_passes_with_production_settings() -> None:
    result = check_deploy(production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_on_development_defaults() -> None:
    """The same command catches what a forgotten variable leaves behind (so the pass above means something)."""
    env = production_env()
    for name in ("SECRET_KEY", "QBO_TOKEN_KEYS", "SECURE_HSTS_SECONDS"):
        del env[name]
    result = check_deploy(env)
    assert result.returncode != 0
    for check_id in ("security.W009", "qbo_sync.E014", "qbo_sync.E015", "security.W004"):
        assert check_id in result.stderr + result.stdout, check_id
