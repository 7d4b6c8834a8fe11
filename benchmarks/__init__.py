"""Development harnesses for qbo_sync, with Batchly as their host: the benchmark suite (``manage.py bench``,
``make bench``; docs/performance.md), the chaos suite (``manage.py chaos``, ``make chaos``; docs/reliability.md),
the client's throttle bench (``python -m benchmarks.throttle``) and the sandbox's throughput bench
(``python -m benchmarks.sandbox``).

Not part of the installable package (the wheel holds ``qbo_sync`` only). Batchly's settings add this app to
``INSTALLED_APPS`` to register the two management commands; qbo_sync never imports it.
"""
