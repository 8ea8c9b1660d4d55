"""Consumers: the edge where alerts and tallies leave Kafka for Redis."""
