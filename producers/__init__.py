"""Producers: the edge where declarations enter Kafka (replayed nights and live entry)."""
