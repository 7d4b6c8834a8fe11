"""QBO's throttles, per realm: requests/minute, requests in flight, batch calls/minute.

Windows are sliding, measured on the sandbox clock and divided by ``time_scale``. A limit of 0 (or None)
disables it. Throttled calls are not counted against the window (as with QBO, waiting ~60 s recovers).
"""

from __future__ import annotations

import threading
from collections import deque


class RealmLimiter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: deque[float] = deque()
        self.batches: deque[float] = deque()
        self.in_flight = 0

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.batches.clear()

    @staticmethod
    def _trim(window: deque[float], now: float, span: float) -> None:
        edge = now - span
        while window and window[0] <= edge:
            window.popleft()

    def acquire(self, now: float, span: float, rate: int | None, concurrency: int | None,
                batch: bool, batch_rate: int | None) -> str | None:
        """Admit a request, or return the name of the limit it hit."""
        with self.lock:
            if concurrency and self.in_flight >= concurrency:
                return "concurrency"
            if rate:
                self._trim(self.requests, now, span)
                if len(self.requests) >= rate:
                    return "rate"
            if batch and batch_rate:
                self._trim(self.batches, now, span)
                if len(self.batches) >= batch_rate:
                    return "batch_rate"
            if rate:
                self.requests.append(now)
            if batch and batch_rate:
                self.batches.append(now)
            self.in_flight += 1
            return None

    def release(self) -> None:
        with self.lock:
            self.in_flight -= 1


THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<IntuitResponse time="{time}" xmlns="http://schema.intuit.com/finance/v3">\n'
    '  <Fault type="SERVICE">\n'
    '    <Error code="3001">\n'
    "      <Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>\n"
    "      <Detail>The request limit was reached.  Try again later</Detail>\n"
    "    </Error>\n"
    "  </Fault>\n"
    "</IntuitResponse>\n"
)


def throttle_body(time_text: str) -> bytes:
    return THROTTLE_XML.format(time=time_text).encode("utf-8")
