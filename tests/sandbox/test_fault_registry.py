"""The fault registry: options, flags, stats and the docs table are derived from it, and can't drift."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from qbo_sync.sandbox import DEFAULTS, Sandbox, faults
from qbo_sync.sandbox.__main__ import build_parser
from qbo_sync.sandbox.__main__ import main as sandbox_main
from qbo_sync.sandbox.server import REALM_OPTIONS, RUNTIME_OPTIONS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"


def test_every_rate_option_is_an_option_a_flag_and_a_per_realm_setting():
    parser = build_parser()
    helps = {opt: action.help for action in parser._actions for opt in action.option_strings}
    assert set(faults.RATE_OPTIONS) == {"fault_rate", "reset_rate", "slow_rate", "lost_response_rate",
                                        "garbage_rate"}  # the names tests, chaos and benchmarks use
    for option in faults.RATE_OPTIONS:
        assert DEFAULTS[option] == 0.0
        assert option in REALM_OPTIONS and option in RUNTIME_OPTIONS
        flag = f"--{option.replace('_', '-')}"
        assert helps[flag] == faults.option_help(option)
        assert getattr(parser.parse_args([flag, "0.25"]), option) == 0.25


def test_every_fault_has_a_counter_in_stats(qbo_sandbox, qbo_realm):
    stats = qbo_sandbox.stats(qbo_realm)
    for fault in faults.FAULTS:
        assert fault.stat in stats, fault.name
        assert isinstance(stats[fault.stat], dict) == bool(fault.stat_key), fault.name


def test_rates_are_checked_everywhere(qbo_sandbox, qbo_realm):
    with pytest.raises(ValueError, match="between 0 and 1"):
        qbo_sandbox.configure(qbo_realm, fault_rate=2)
    r = requests.post(f"{qbo_sandbox.base_url}/_sandbox/configure",
                      json={"realm_id": qbo_realm, "reset_rate": -0.5}, timeout=5)
    assert r.status_code == 400 and "between 0 and 1" in r.json()["error"]
    with pytest.raises(ValueError):
        Sandbox(slow_rate=1.5)
    with pytest.raises(TypeError, match="fault_rates"):
        Sandbox(fault_rates=0.1)
    assert sandbox_main(["--garbage-rate", "3"]) == 2


def test_a_rate_set_on_construction_is_served_and_counted():
    with Sandbox(fault_rate=1.0) as sb:
        realm = sb.create_realm()
        token = sb.issue_tokens(realm)["access_token"]
        r = requests.get(f"{sb.base_url}/v3/company/{realm}/customer/1", timeout=5,
                         headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        assert r.status_code in (500, 503)
        stats = sb.stats(realm)
        assert stats["faults_injected"] == {str(r.status_code): 1}
        assert stats["requests_total"] == 1


def test_docs_fault_table_is_the_registry():
    text = DOCS.read_text()
    assert faults.markdown_table() in text, "regenerate docs/sandbox.md's fault table from faults.markdown_table()"
    for option in faults.RATE_OPTIONS:
        assert f"`--{option.replace('_', '-')}`" in text
