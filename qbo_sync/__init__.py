"""qbo_sync: a pluggable Django app that keeps a host application and QuickBooks Online in step."""

__version__ = "0.2.0.dev0"
