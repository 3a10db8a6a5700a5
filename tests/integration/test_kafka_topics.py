"""`cairn topics` on a real broker: Cairn's topics created once, with their configuration,
and left alone when they already exist."""

from __future__ import annotations

from kafka.admin import ConfigResource, ConfigResourceType

from services.bus.topics_admin import DAY_MS, admin_client, ensure_topics, physical_name
from services.model.topics import ALL_TOPICS, DEAD_LETTERS, ENTITY_CHANGES, GIT_EVENTS
from tests.support import kafka


def _configs(bootstrap: str, topic: str) -> dict[str, str]:
    with admin_client(bootstrap) as admin:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
        )
    return {name: str(entry["value"]) for name, entry in described["topic"][topic].items()}


def test_every_topic_is_created_with_the_partitions_asked_for(kafka_namespace: str) -> None:
    bootstrap, namespace = kafka.bootstrap(), kafka_namespace
    states = ensure_topics(bootstrap, 6, 1, namespace=namespace)
    assert {s.name for s in states} == {physical_name(namespace, t.name) for t in ALL_TOPICS}
    assert all(s.created and s.partitions == 6 for s in states)


def test_the_entity_changes_are_compacted_and_the_events_expire(kafka_namespace: str) -> None:
    bootstrap, namespace = kafka.bootstrap(), kafka_namespace
    ensure_topics(bootstrap, 2, 1, namespace=namespace)
    changes = _configs(bootstrap, physical_name(namespace, ENTITY_CHANGES.name))
    assert changes["cleanup.policy"] == "compact"
    git = _configs(bootstrap, physical_name(namespace, GIT_EVENTS.name))
    assert git["cleanup.policy"] == "delete" and git["retention.ms"] == str(7 * DAY_MS)
    letters = _configs(bootstrap, physical_name(namespace, DEAD_LETTERS.name))
    assert letters["retention.ms"] == str(30 * DAY_MS)
    assert int(git["max.message.bytes"]) > 25 * 1024 * 1024  # the largest webhook body fits


def test_running_it_again_creates_nothing_and_changes_no_partition_count(
    kafka_namespace: str,
) -> None:
    bootstrap, namespace = kafka.bootstrap(), kafka_namespace
    ensure_topics(bootstrap, 3, 1, namespace=namespace)
    again = ensure_topics(bootstrap, 5, 1, namespace=namespace)
    assert not any(s.created for s in again)
    assert {s.partitions for s in again} == {3}
