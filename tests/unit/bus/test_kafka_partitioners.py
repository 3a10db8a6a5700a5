"""Both Kafka producers (kafka-python for the processors, aiokafka for the receivers) put a
key on the same partition, so a repository's events stay in order whichever wrote them."""

from __future__ import annotations

from dataclasses import dataclass

from services.bus.kafka_log import CaseFoldingPartitioner
from services.bus.kafka_loop_producer import _case_folding_partition

KEYS = [
    "github.com/acme/shop",
    "GitHub.com/Acme/Shop",
    "component:default/payments-api",
    "Component:default/Payments-API",
    "gitlab.example.com/group/sub/ünïcode",
    "x",
]


@dataclass
class _Cluster:
    """What kafka-python's partitioner reads of the cluster's metadata: one topic."""

    topic: str
    partitions: int

    def topics(self) -> set[str]:
        return {self.topic}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions))


def test_the_receivers_producer_partitions_keys_as_the_processors_producer_does() -> None:
    for partitions in (3, 12):
        cluster = _Cluster("t", partitions)
        all_partitions = list(range(partitions))
        for key in KEYS:
            raw = key.encode()
            expected = CaseFoldingPartitioner().partition("t", key, raw, None, None, cluster)
            assert _case_folding_partition(raw, all_partitions, all_partitions) == expected


def test_keys_that_differ_only_in_case_share_a_partition() -> None:
    partitions = list(range(12))
    assert _case_folding_partition(b"GitHub.com/Acme/Shop", partitions, partitions) == (
        _case_folding_partition(b"github.com/acme/shop", partitions, partitions)
    )
