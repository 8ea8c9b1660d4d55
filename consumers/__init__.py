"""Consumers: the edge where alerts and tallies leave Kafka for Redis, and are read from there.

``loop`` is the one Kafka-to-somewhere loop (poll, write, flush, commit); ``redis_sink``
is its sink into Redis, under the contract in ``keys``. From Redis: ``reader`` (seats,
history, the run summary), ``watch`` (the terminal view), ``subscribe`` (consumer groups),
``webhooks`` (signed POSTs) and ``web`` (the read-only web page). Colours and labels come
from ``schemas`` (``ALERT_KINDS``, ``parties``); stopping and retrying from ``tallyroom.lifecycle``.
"""
