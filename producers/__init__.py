"""Producers: the edge where declarations enter Kafka.

``nights`` reads a night in the House of Commons Library layout, ``replay`` sends it at
its own pace, ``live`` checks and sends typed-in records (``tallyroom declare``) and
``http`` takes them over HTTP (``tallyroom entry``); ``kafka`` is the producer and the topics.
"""
