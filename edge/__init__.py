"""fer-edge: the on-device daemon (camera, YuNet face detection with Haar as the fallback, LiteRT, MQTT)."""
