"""Rows behind the shared per-realm throttle (``qbo_sync.services.ratelimit.DatabaseThrottle``).

Three small tables instead of one counter, so that every worker on every machine sees the same limits and a
killed worker cannot hold a slot forever:

* :class:`ThrottleRealm`: one row per realm, locked (``SELECT ... FOR UPDATE``) while a slot is granted, so the
  check-then-record is atomic across processes; it also holds the pause QBO asked for after a 429;
* :class:`ThrottleStart`: when each recent request started (the sliding windows count these);
* :class:`ThrottleLease`: a request in flight. It expires on its own, so a crashed process frees its slot.

Times are Unix epoch seconds as floats (``time.time()``): cheap to compare, and meaningful across machines whose
clocks are synchronised (NTP); the throttle's slack absorbs small skew.
"""

from __future__ import annotations

from django.db import models


class ThrottleRealm(models.Model):
    realm_id = models.CharField(max_length=32, unique=True)
    #: No request may start before this epoch time (QBO answered 429).
    penalty_until = models.FloatField(default=0.0)

    class Meta:
        verbose_name = "throttle realm"

    def __str__(self) -> str:
        return f"throttle {self.realm_id}"


class ThrottleStart(models.Model):
    realm_id = models.CharField(max_length=32)
    started_at = models.FloatField()
    is_batch = models.BooleanField(default=False)

    class Meta:
        verbose_name = "throttle request start"
        indexes = [
            models.Index(fields=["realm_id", "started_at"], name="qbo_throttle_start_idx"),
            models.Index(fields=["realm_id", "is_batch", "started_at"], name="qbo_throttle_batch_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.realm_id} @ {self.started_at:.3f}"


class ThrottleLease(models.Model):
    realm_id = models.CharField(max_length=32)
    expires_at = models.FloatField()

    class Meta:
        verbose_name = "throttle lease"
        indexes = [models.Index(fields=["realm_id", "expires_at"], name="qbo_throttle_lease_idx")]

    def __str__(self) -> str:
        return f"{self.realm_id} until {self.expires_at:.3f}"
