from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone

from qbo_sync import crypto
from qbo_sync.models.base import ORGANIZATION_MODEL


class QboConnection(models.Model):
    """One organization's link to one QuickBooks company (realm). Tokens are encrypted at rest."""

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        NEEDS_REAUTH = "needs_reauth", "Needs re-authorisation"
        DISCONNECTED = "disconnected", "Disconnected"

    organization = models.OneToOneField(ORGANIZATION_MODEL, on_delete=models.CASCADE, related_name="qbo_connection")
    realm_id = models.CharField(max_length=32, db_index=True, blank=True)
    environment = models.CharField(max_length=16, default="sandbox")
    company_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DISCONNECTED, db_index=True)
    # Ciphertext only (see qbo_sync.crypto); read and write through the properties below.
    access_token_encrypted = models.TextField(blank=True, editable=False)
    refresh_token_encrypted = models.TextField(blank=True, editable=False)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    #: Bumped on every refresh; lets a waiter see that another worker refreshed while it waited for the lock.
    token_version = models.PositiveIntegerField(default=0)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    #: When a worker last claimed a chunk of this organization's queue: the fair pick ("served least recently")
    #: reads it, so every worker process on every machine shares one rotation.
    last_served_at = models.DateTimeField(null=True, blank=True)
    #: An operator's pause (month-end close, an investigation): work still queues, nothing is sent or pulled.
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=255, blank=True)
    paused_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    #: How the company charges sales tax, and the tax code invoices name under the manual model; blank: the
    #: QBO_SYNC TAX_MODEL / TAX_CODE settings decide.
    tax_model = models.CharField(max_length=16, blank=True, choices=[("automated", "Automated sales tax"),
                                                                     ("manual", "Manual sales tax"),
                                                                     ("none", "No sales tax")])
    tax_code = models.CharField(max_length=32, blank=True, help_text="QuickBooks TaxCode Id invoices name when the "
                                "company uses manual sales tax.")
    connected_at = models.DateTimeField(null=True, blank=True)
    connected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "QuickBooks connection"
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "realm_id"],
                condition=models.Q(status__in=["connected", "needs_reauth"]),
                name="uniq_active_realm_per_environment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} → {self.company_name or self.realm_id or 'not connected'} ({self.status})"

    def sales_tax(self) -> tuple[str, str]:
        """``(tax model, tax code)`` as configured: its own, else QBO_SYNC TAX_MODEL / TAX_CODE. A model of
        ``"detect"`` is resolved from the company's Preferences by ``services.push.sales_tax``."""
        from qbo_sync.conf import qbo_settings

        return (self.tax_model or qbo_settings.TAX_MODEL or "detect",
                self.tax_code or qbo_settings.TAX_CODE or "")

    @property
    def access_token(self) -> str:
        return crypto.decrypt(self.access_token_encrypted)

    @access_token.setter
    def access_token(self, value: str) -> None:
        self.access_token_encrypted = crypto.encrypt(value)

    @property
    def refresh_token(self) -> str:
        return crypto.decrypt(self.refresh_token_encrypted)

    @refresh_token.setter
    def refresh_token(self, value: str) -> None:
        self.refresh_token_encrypted = crypto.encrypt(value)

    @property
    def is_usable(self) -> bool:
        return self.status == self.Status.CONNECTED

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None

    def access_token_expires_within(self, seconds: float) -> bool:
        if self.access_token_expires_at is None:
            return True
        return self.access_token_expires_at <= timezone.now() + dt.timedelta(seconds=seconds)


class OAuthState(models.Model):
    """A "connect to QuickBooks" attempt: makes the signed OAuth ``state`` single-use and bound to org and user."""

    nonce = models.CharField(max_length=64, unique=True)
    organization = models.ForeignKey(ORGANIZATION_MODEL, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "OAuth state"
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return f"connect {self.organization_id} (expires {self.expires_at:%H:%M:%S})"
