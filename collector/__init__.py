"""Collector: MQTT telemetry in, validated and batched, into the time-series store."""
