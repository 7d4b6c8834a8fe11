"""A faithful local QuickBooks Online server for tests, demos and benchmarks.

Stdlib only; imports nothing from the rest of ``qbo_sync``. Start it with ``python -m qbo_sync.sandbox``
or from Python::

    from qbo_sync.sandbox import Sandbox

    with Sandbox(realms=["123"], starter_data=True) as sb:
        tokens = sb.issue_tokens("123")
        # GET f"{sb.base_url}/v3/company/123/customer/1" with "Authorization: Bearer <access_token>"

See ``docs/sandbox.md`` for the behaviours it reproduces.
"""

from .server import DEFAULTS, Sandbox
from .util import Clock
from .webhooks import sign as sign_webhook
from .webhooks import verify as verify_webhook

__all__ = ["DEFAULTS", "Clock", "Sandbox", "sign_webhook", "verify_webhook"]
