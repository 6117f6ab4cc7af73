"""The validate service."""
