"""The sandbox's HTTP routes, one module per family.

``handler.Handler`` reads the request and hands it to a family by path: ``api`` (``/v3/company/{realmId}/...``:
authentication, throttles, faults, then ``records``, ``query``, ``batch`` or ``cdc``), ``oauth`` (authorize,
token, revoke, discovery) or ``admin`` (``/_sandbox/...``). Families answer through the handler's ``reply``,
``reply_json`` and ``drop``.
"""
