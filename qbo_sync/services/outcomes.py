"""What processing one queue item came to. The queue service turns outcomes into status, attempts and backoff."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Result(StrEnum):
    COMPLETED = "completed"  # done (also: nothing to do, e.g. already in QBO)
    RETRY = "retry"  # a retryable error: try again later with backoff (429, 5xx, timeouts, lost responses)
    FAILED = "failed"  # a non-retryable error: fail at once with the message (validation, duplicate)
    WAIT = "wait"  # cannot run now and it is nobody's fault (connection needs re-auth): no attempt is spent


@dataclass(frozen=True)
class Outcome:
    result: Result
    message: str = ""
    code: str = ""
    retry_after: float | None = None  # seconds; None = the queue's own backoff

    @classmethod
    def completed(cls, message: str = "") -> Outcome:
        return cls(Result.COMPLETED, message)

    @classmethod
    def retry(cls, message: str, code: str = "", retry_after: float | None = None) -> Outcome:
        return cls(Result.RETRY, message, code, retry_after)

    @classmethod
    def failed(cls, message: str, code: str = "") -> Outcome:
        return cls(Result.FAILED, message, code)

    @classmethod
    def wait(cls, message: str) -> Outcome:
        return cls(Result.WAIT, message)
