"""The report service."""
