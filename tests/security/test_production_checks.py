"""Finding 7 (issue 12): with DEBUG off, development secrets stop the process instead of passing silently.

A system check error (so ``runserver``, ``migrate``, ``qcluster`` and ``check`` refuse to start) when SECRET_KEY is a
development key (qbo_sync.E014), QBO_TOKEN_KEYS is empty, i.e. tokens are encrypted with the development default
derived from SECRET_KEY (E015), or the webhook verifier is empty while the webhook endpoint is routed (E016). And the
API's schema and docs pages are for signed-in users outside DEBUG.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.checks.registry import registry
from django.test import Client

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k8#Qz!v2Lm9@Xr4Tp7&Wn1^Ys6*Hd3(Jf0)Gb5-Ac8+Ue2=Ri7Ko4"
DEV_KEY = "django-insecure-batchly-development-key-change-me-0123456789"


def errors() -> set[str]:
    return {m.id for m in registry.run_checks() if m.id in ("qbo_sync.E014", "qbo_sync.E015", "qbo_sync.E016")}


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = STRONG_KEY
    settings.QBO_SYNC = {**settings.QBO_SYNC, "TOKEN_KEYS": [Fernet.generate_key().decode()],
                         "WEBHOOK_VERIFIER_TOKEN": "verifier-token"}
    return settings


def test_production_settings_pass(production):
    assert errors() == set()


@pytest.mark.parametrize("key", [DEV_KEY, "short-key", "a" * 60, "django-insecure-" + STRONG_KEY])
def test_a_development_secret_key_is_an_error(production, key):
    production.SECRET_KEY = key
    assert errors() == {"qbo_sync.E014"}


def test_token_keys_left_at_the_development_default_are_an_error(production):
    production.QBO_SYNC = {**production.QBO_SYNC, "TOKEN_KEYS": []}
    assert errors() == {"qbo_sync.E015"}


def test_an_empty_webhook_verifier_is_an_error_only_where_webhooks_are_routed(production):
    production.QBO_SYNC = {**production.QBO_SYNC, "WEBHOOK_VERIFIER_TOKEN": ""}
    assert errors() == {"qbo_sync.E016"}
    production.ROOT_URLCONF = "tests.admin.urls_without_qbo"
    assert errors() == set()


def test_with_debug_on_the_development_defaults_are_allowed(settings):
    settings.DEBUG = True
    settings.SECRET_KEY = DEV_KEY
    settings.QBO_SYNC = {**settings.QBO_SYNC, "TOKEN_KEYS": [], "WEBHOOK_VERIFIER_TOKEN": ""}
    assert errors() == set()


def test_migrate_refuses_to_start_with_debug_off_and_the_development_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QBO_", "SECRET_KEY", "DEBUG"))}
    env.update({"DJANGO_SETTINGS_MODULE": "batchly.settings", "DEBUG": "false",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    result = subprocess.run([sys.executable, "manage.py", "migrate", "--plan"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "qbo_sync.E014" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_a_signed_in_user_outside_debug(settings, path):
    settings.DEBUG = False
    assert Client().get(path).status_code in (401, 403)
    client = Client()
    client.force_login(UserFactory(username="reader"))
    assert client.get(path).status_code == 200
    settings.DEBUG = True
    assert Client().get(path).status_code == 200
