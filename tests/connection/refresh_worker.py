"""Child process of the multi-process refresh test: ``python -m tests.connection.refresh_worker CONNECTION_ID THREADS``.

Configured by the environment (DJANGO_SETTINGS_MODULE, DATABASE_URL, QBO_*). Prints ``ready``, waits for a line on
stdin, then every thread reads CompanyInfo through ``client_for`` (the access token has expired at the sandbox, so
each one meets a 401 and asks for a refresh) and one JSON line with the outcome is printed.
"""

from __future__ import annotations

import json
import sys
import threading


def main(connection_id: int, threads: int) -> None:
    import django

    django.setup()
    from django.db import connections

    from qbo_sync.models import QboConnection
    from qbo_sync.services.connect import client_for

    results: list[str] = []
    refreshes: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work() -> None:
        try:
            client = client_for(QboConnection.objects.get(pk=connection_id))
            barrier.wait()
            client.company_info()
            outcome = "ok"
        except Exception as exc:  # reported to the parent, which asserts on it
            outcome = f"{type(exc).__name__}: {exc}"
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)
            refreshes.append(client.tokens.refreshes if "client" in locals() else 0)

    print("ready", flush=True)
    sys.stdin.readline()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    print(json.dumps({"results": results, "refreshes": sum(refreshes)}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
