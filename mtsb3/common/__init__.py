"""Shared pieces of the mtsb3 algorithms."""
