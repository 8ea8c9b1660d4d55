"""Which partition an election lives on.

Producers key every event by its election, and Kafka's default partitioner
(murmur2 of the key, as in the Java client and kafka-python) puts it on one
partition. The worker that owns that partition owns the election's whole tally;
an event found on any other partition was keyed some other way, and counting it
there would split one election's tally between two workers.
"""

from __future__ import annotations

from functools import lru_cache

from kafka.partitioner.default import murmur2


# Cached: the worker asks for every event, kafka-python's murmur2 is pure Python,
# and a night has a handful of elections.
@lru_cache(maxsize=4096)
def election_partition(election: str, partitions: int) -> int:
    hashed: int = murmur2(election.encode("utf-8"))
    return (hashed & 0x7FFFFFFF) % partitions
