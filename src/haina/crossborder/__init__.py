"""Cross-border retail import: composite tax, buyer identity, quotas, customs messages."""
