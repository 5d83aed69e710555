"""The opt-in local web page: upload page, /predict, /healthz and the preview stream."""
