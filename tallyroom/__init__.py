"""Tallyroom: live election results over Kafka, Faust and Redis."""

__version__ = "0.1.0"
