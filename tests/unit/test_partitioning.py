"""Events are keyed by election; the worker checks they sit on the election's partition."""

from kafka.cluster import ClusterMetadata
from kafka.partitioner.default import DefaultPartitioner

from tallyroom.streams.partitioning import election_partition


class _Cluster(ClusterMetadata):
    def __init__(self, partitions: int):
        super().__init__()
        self._partitions = set(range(partitions))

    def topics(self, exclude_internal_topics=True):
        return {"t"}

    def partitions_for_topic(self, topic):
        return self._partitions

    def available_partitions_for_topic(self, topic):
        return self._partitions


def test_election_partition_is_kafkas_default_partitioner_on_the_election_key():
    elections = ["ge2024", "ge2019", "bench-abc-r500", "us-2024-county", "é-unicode", "x"]
    for partitions in (1, 2, 3, 8, 12):
        cluster = _Cluster(partitions)
        for election in elections:
            key = election.encode("utf-8")
            expected = DefaultPartitioner().partition("t", election, key, None, None, cluster)
            assert election_partition(election, partitions) == expected


def test_one_partition_holds_every_election():
    assert {election_partition(f"e{n}", 1) for n in range(100)} == {0}


def test_elections_spread_over_partitions():
    assert len({election_partition(f"e{n}", 4) for n in range(100)}) == 4
