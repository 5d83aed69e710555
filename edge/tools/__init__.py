"""Operator commands beside the daemon: annotate, bench, install-service, ha-discovery."""
