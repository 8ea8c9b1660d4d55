"""Stream processing: the pure domain and the Faust worker that runs it.

Pure, unit-tested without Kafka: ``tally`` (the running tally and each seat's result),
``rules`` (the upset rules, one function each), ``count`` (a declaration in, the seat
result and its alerts out) and ``partitioning`` (which partition an election lives on).
``app`` is the Faust worker: topics, the seat table and the agent that calls ``count``.
"""
