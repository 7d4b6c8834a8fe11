"""qbo_sync in the Django admin.

- :class:`QboSyncAdminMixin` (``qbo_sync.admin.actions``): what a host adds to the ModelAdmin of a synced model —
  "Sync selected to QuickBooks" / "Pull selected from QuickBooks" with a per-row preview, and a QuickBooks state
  column.
- qbo_sync's own models are registered in ``qbo_sync.admin.registration`` (imported here, so the admin's
  autodiscovery finds them).
"""

from qbo_sync.admin import registration  # noqa: F401 (registers qbo_sync's ModelAdmins)
from qbo_sync.admin.actions import QboSyncAdminMixin
from qbo_sync.admin.tenancy import OrganizationScopedAdmin, visible_organization_ids

__all__ = ["OrganizationScopedAdmin", "QboSyncAdminMixin", "visible_organization_ids"]
