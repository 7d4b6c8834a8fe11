"""QuickBooks webhooks: verify ``intuit-signature`` over the raw body, store the events, trigger targeted pulls."""
