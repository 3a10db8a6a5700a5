"""Kafka topic and consumer-group administration with kafka-python's admin client.

`ensure_topics` creates Cairn's topics (services/model/topics.py) idempotently: a topic that
exists is left as it is and reported, since changing its partition count would move keys to
other partitions and break per-key order and the offsets the projections use as versions.

Retention, chosen per topic:

- `cairn.entity.changes`: compacted, tombstones kept 1 day. It is the catalog itself:
  replaying it rebuilds every projection, and a consumer lagging less than a day still sees
  the deletions.
- `cairn.git.events`, `cairn.ci.events`: deleted after 7 days. They are hints for
  level-triggered processors; once processed they are only worth keeping for inspection and
  a short replay.
- `cairn.deployments`: deleted after 30 days, the history the projections summarise.
- `cairn.dead-letters`: deleted after 30 days, time for someone to look at what failed.

Records up to 32 MiB are allowed on the event topics (webhook bodies up to 25 MiB are kept
raw in the envelope). `min.insync.replicas` is 2 when there are at least 3 replicas, so an
`acks=all` write survives the loss of one broker; otherwise 1.

A namespace prefixes every topic and group name, so several Cairn installations (or test
runs) can share one cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import TopicPartition

from services.bus.port import LogUnavailable
from services.model.topics import (
    ALL_TOPICS,
    ENTITY_CHANGES,
    Topic,
)

DAY_MS = 24 * 60 * 60 * 1000
MAX_RECORD_BYTES = 32 * 1024 * 1024


class GroupActive(RuntimeError):
    """The consumer group has running members, so its offsets cannot be moved."""


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    created: bool


def physical_name(namespace: str, name: str) -> str:
    """The name on the cluster of a topic or group Cairn calls `name`."""
    return f"{namespace}{name}"


def topic_configs(topic: Topic, replication: int) -> dict[str, str]:
    """The configuration Cairn gives `topic` when it creates it (see the module docstring)."""
    configs = {"min.insync.replicas": "2" if replication >= 3 else "1"}
    if topic.compacted:
        configs.update({"cleanup.policy": "compact", "delete.retention.ms": str(DAY_MS)})
    else:
        configs.update(
            {
                "cleanup.policy": "delete",
                "retention.ms": str(topic.retention_days * DAY_MS),
            }
        )
    if topic.name != ENTITY_CHANGES.name:
        configs["max.message.bytes"] = str(MAX_RECORD_BYTES)
    return configs


@contextmanager
def admin_client(bootstrap: str, timeout: float = 30.0) -> Iterator[KafkaAdminClient]:
    """An admin client, or `LogUnavailable` naming the address when Kafka does not answer."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap.split(","),
            client_id="cairn-admin",
            request_timeout_ms=int(timeout * 1000),
            bootstrap_timeout_ms=int(timeout * 1000),
        )
    except KafkaError as exc:
        raise LogUnavailable(
            f"Kafka at {bootstrap} did not answer ({type(exc).__name__}); "
            "check CAIRN_KAFKA_BOOTSTRAP and that the brokers are running."
        ) from exc
    try:
        yield admin
    finally:
        admin.close()


def existing_partitions(admin: KafkaAdminClient, names: Sequence[str]) -> dict[str, int]:
    """Partition counts of those of `names` that exist."""
    if not names:
        return {}
    found: dict[str, int] = {}
    for described in admin.describe_topics(list(names)):
        if described.get("error_code", 0) == 0 and described["partitions"]:
            found[described["name"]] = len(described["partitions"])
    return found


def ensure_named_topics(
    bootstrap: str,
    topics: Mapping[str, Mapping[str, str]],
    partitions: int,
    replication: int,
    *,
    timeout: float = 30.0,
) -> list[TopicState]:
    """Create each topic (name -> configs) that does not exist yet; leave the others alone."""
    with admin_client(bootstrap, timeout) as admin:
        before = existing_partitions(admin, list(topics))
        missing = {
            name: {
                "num_partitions": partitions,
                "replication_factor": replication,
                "configs": dict(configs),
            }
            for name, configs in topics.items()
            if name not in before
        }
        if missing:
            # created meanwhile by someone else: that is the state we want
            with suppress(TopicAlreadyExistsError):
                admin.create_topics(missing, timeout_ms=int(timeout * 1000))
            admin.wait_for_topics(list(missing), timeout_ms=int(timeout * 1000))
        after = existing_partitions(admin, list(topics))
    return [
        TopicState(name=name, partitions=after.get(name, 0), created=name not in before)
        for name in topics
    ]


def ensure_topics(
    bootstrap: str,
    partitions: int,
    replication: int,
    *,
    namespace: str = "",
    topics: Iterable[Topic] = ALL_TOPICS,
    timeout: float = 30.0,
) -> list[TopicState]:
    """Create Cairn's topics that are missing, with the configuration above; idempotent."""
    wanted = {
        physical_name(namespace, topic.name): topic_configs(topic, replication) for topic in topics
    }
    return ensure_named_topics(bootstrap, wanted, partitions, replication, timeout=timeout)


def missing_topics(bootstrap: str, names: Sequence[str], *, timeout: float = 30.0) -> list[str]:
    """Those of `names` that do not exist on the cluster."""
    with admin_client(bootstrap, timeout) as admin:
        found = existing_partitions(admin, names)
    return [name for name in names if name not in found]


def group_assignments(bootstrap: str, group: str) -> dict[str, list[tuple[str, int]]]:
    """The current members of a consumer group and the partitions each holds."""
    # faust's members carry their own subscription metadata, which kafka-python cannot
    # decode (it warns for each); the assignments, all this needs, decode fine.
    logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
    with admin_client(bootstrap) as admin:
        described: dict[str, Any] = admin.describe_groups([group]).get(group, {})
    members: dict[str, list[tuple[str, int]]] = {}
    for member in described.get("members", []):
        assignment = member.get("member_assignment") or {}
        held = [
            (entry["topic"], int(partition))
            for entry in assignment.get("assigned_partitions", [])
            for partition in entry["partitions"]
        ]
        members[str(member["member_id"])] = sorted(held)
    return members


def reset_group_to_beginning(bootstrap: str, group: str, topics: Sequence[str]) -> int:
    """Move `group`'s committed offsets on `topics` to the earliest record; returns how many
    partitions were reset. Raises `GroupActive` while the group has members."""
    with admin_client(bootstrap) as admin:
        state = admin.describe_groups([group]).get(group, {})
        members = state.get("members") or []
        if members:
            raise GroupActive(
                f"Consumer group {group} has {len(members)} running member(s); stop them "
                "(the processors) before replaying, then start them again."
            )
        partitions = existing_partitions(admin, topics)
        absent = [topic for topic in topics if topic not in partitions]
        if absent:
            raise ValueError(f"Topic(s) {', '.join(absent)} do not exist; run `cairn topics`.")
        specs = {
            TopicPartition(topic, partition): OffsetSpec.EARLIEST
            for topic, count in partitions.items()
            for partition in range(count)
        }
        results = admin.reset_group_offsets(group, specs)
    failed = {str(tp): r["error"].__name__ for tp, r in results.items() if r["error"].errno != 0}
    if failed:
        raise GroupActive(f"Kafka refused to reset {group}: {failed}.")
    return len(results)
