"""Signals a host project may listen to. qbo_sync sends them after the change is committed."""

from django.dispatch import Signal

#: A host row reached QuickBooks. kwargs: ``entity_type``, ``object_id``, ``qbo_id``, ``organization_id``.
entity_pushed = Signal()
#: A pulled change was written to a host row. kwargs: ``entity_type``, ``object_id``, ``fields``.
entity_pulled = Signal()
#: A conflict was recorded. kwargs: ``conflict``.
conflict_recorded = Signal()
#: A connection needs a person to reconnect it. kwargs: ``connection``.
connection_needs_reauth = Signal()
