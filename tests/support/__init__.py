"""Test support: a collecting MQTT subscriber, the daemon in a subprocess, TLS files, the FER2013 sample.

The broker and the generated media are the scripts' too: scripts/devkit (not shipped either).
"""
