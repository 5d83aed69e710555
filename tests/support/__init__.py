"""Test support: a local mosquitto broker and generated face media (not shipped)."""
