"""What processing one queue item came to. The queue service turns outcomes into status, attempts and backoff."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from qbo_sync.exceptions import QboApiError, QboAuthError, QboReauthRequired, QboSyncError
from qbo_sync.mapping.base import MappingError


class Result(StrEnum):
    COMPLETED = "completed"  # done (also: nothing to do, e.g. already in QBO)
    RETRY = "retry"  # a retryable error: try again later with backoff (429, 5xx, timeouts, lost responses)
    FAILED = "failed"  # a non-retryable error: fail at once with the message (validation, duplicate)
    WAIT = "wait"  # cannot run now and it is nobody's fault (connection needs re-auth): no attempt is spent


def safe_text(value: object, limit: int = 2000) -> str:
    """Text fit for any database column: no NUL bytes (PostgreSQL refuses them; a garbage answer from QBO quoted
    in an error message may hold some), other control characters escaped, bounded length."""
    text = str(value or "")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
        text = "".join(ch if ord(ch) >= 32 or ch in "\n\t" else f"\\x{ord(ch):02x}" for ch in text)
    return text[:limit]


@dataclass(frozen=True)
class Outcome:
    result: Result
    message: str = ""
    code: str = ""
    retry_after: float | None = None  # seconds; None = the queue's own backoff

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", safe_text(self.message))
        object.__setattr__(self, "code", safe_text(self.code, 32))

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


def outcome_for_error(exc: Exception) -> Outcome:
    """How a QBO error ends a queue item: retry what may succeed later, fail what never will, wait for a person.
    Anything that is not an error of ours is re-raised."""
    if isinstance(exc, QboReauthRequired):
        return Outcome.wait(str(exc))
    if isinstance(exc, QboApiError):
        if exc.retryable:
            return Outcome.retry(str(exc), code=str(exc.code or exc.status or ""),
                                 retry_after=getattr(exc, "retry_after", None))
        if isinstance(exc, QboAuthError):
            return Outcome.wait(str(exc))
        return Outcome.failed(str(exc), code=str(exc.code or ""))
    if isinstance(exc, MappingError):
        return Outcome.failed(str(exc), code="mapping")
    if isinstance(exc, QboSyncError):
        return Outcome.failed(str(exc))
    raise exc
