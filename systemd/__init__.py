"""The systemd unit and its Jetson drop-in, installed as package data by `fer-edge install-service`."""
