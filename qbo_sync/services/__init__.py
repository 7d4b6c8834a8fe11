"""The use cases of the sync: one entry point per use case. Owns transactions; reaches host rows only through
adapters and QuickBooks only through ``qbo_sync.client``."""
