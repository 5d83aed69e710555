"""fer-edge: the on-device daemon (camera, Haar, LiteRT, MQTT)."""
