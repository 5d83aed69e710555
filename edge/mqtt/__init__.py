"""MQTT output: the publisher, its outbox, Home Assistant discovery."""
