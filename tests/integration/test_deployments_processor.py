"""The deployment processor over the real store (SQLite and PostgreSQL): events attached to
entities by each rule, kept unmatched until their entity appears, states merged in event
order, and the listings the API serves (filters, cursor, lead time)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest import cdevents, github
from ingest.deployments_api import normalise_deployment
from processors import faust_agents
from processors.deployments import DeploymentProcessor, environment_state
from services.bus.port import LogRecord, OutgoingRecord
from services.bus.sqlite_log import SqliteEventLog
from services.demo.ci_payloads import (
    cdevent,
    deployment_report,
    github_deployment_status_payload,
    github_workflow_run_payload,
)
from services.demo.github_payloads import GitHubRepoInfo
from services.model.catalog import DesiredLocation, location_id
from services.model.ci_events import CiEventReceived, DeploymentRecorded
from services.model.events import (
    CommitSeen,
    DeadLettered,
    EntityChanged,
    GitEventReceived,
    PushReceived,
    Repository,
)
from services.model.topics import CI_EVENTS, DEAD_LETTERS, DEPLOYMENTS
from services.store.deployments_store import CiQuery, SqlDeploymentStore
from services.store.sql_store import SqlCatalogStore
from tests.integration.conftest import unique

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


@pytest.fixture
def deployments(catalog_store: SqlCatalogStore) -> Iterator[SqlDeploymentStore]:
    store = SqlDeploymentStore(catalog_store.url)
    store.create_schema()
    yield store
    store.close()


@pytest.fixture
def processor(deployments: SqlDeploymentStore) -> DeploymentProcessor:
    return DeploymentProcessor(deployments)


def _event(outcome: object) -> CiEventReceived:
    assert isinstance(outcome, CiEventReceived), outcome
    return outcome


class Catalog:
    """Repositories with components, as the descriptor processor would leave them."""

    def __init__(self, store: SqlCatalogStore, processor: DeploymentProcessor) -> None:
        self.store = store
        self.processor = processor

    def repository(self, name: str) -> tuple[Repository, GitHubRepoInfo]:
        url = f"https://github.com/acme/{name}"
        return (
            Repository(
                host="github.com", owner="acme", name=name, clone_url=f"{url}.git", html_url=url
            ),
            GitHubRepoInfo(owner="acme", name=name, clone_url=f"{url}.git", html_url=url),
        )

    def publish(
        self, repository: Repository, components: dict[str, dict[str, str]], system: str = ""
    ) -> list[OutgoingRecord]:
        """The repository now holds these components (name -> annotations)."""
        target = f"url:{repository.html_url}/blob/main/catalog-info.yaml"
        desired = DesiredLocation(
            location_id(target),
            "catalog-info.yaml",
            target,
            {f"component:default/{name}": "e1" for name in components},
            [],
        )
        self.store.reconcile_repository(
            repository, "active", "c1", [desired], set(), lambda p: None
        )
        changes: list[tuple[str, EntityChanged | None]] = []
        for name, marks in components.items():
            ref = f"component:default/{name}"
            entity: dict[str, Any] = {
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "Component",
                "metadata": {"name": name, "annotations": marks},
                "spec": {"type": "service", "owner": "team-pay", "lifecycle": "production"},
            }
            if system:
                entity["spec"]["system"] = system
            changes.append(
                (
                    ref,
                    EntityChanged(
                        ref=ref, location_id=desired.id, location_target=target, entity=entity
                    ),
                )
            )
        return self.processor.handle_entity_changes(changes)


@pytest.fixture
def catalog(catalog_store: SqlCatalogStore, processor: DeploymentProcessor) -> Catalog:
    return Catalog(catalog_store, processor)


def _status(
    info: GitHubRepoInfo, number: int, state: str, at: datetime, sha: str = "a" * 40
) -> CiEventReceived:
    payload = github_deployment_status_payload(
        info, number, state, sha=sha, created_at=at - timedelta(seconds=30), at=at
    )
    return _event(github.normalise("deployment_status", unique("d"), payload))


def _recorded(records: list[OutgoingRecord]) -> list[DeploymentRecorded]:
    assert all(r.topic == "cairn.deployments" for r in records)
    return [DeploymentRecorded.model_validate_json(r.value or b"") for r in records]


def test_an_unmatched_deployment_is_kept_and_attached_when_its_entity_appears(
    catalog: Catalog, processor: DeploymentProcessor, deployments: SqlDeploymentStore
) -> None:
    name = unique("pay")
    repository, info = catalog.repository(name)
    assert processor.handle(_status(info, 1, "success", T0)) == []
    [unmatched] = deployments.list_deployments(CiQuery(unmatched=True)).items
    assert unmatched.repository == repository.key and unmatched.entity_refs == []

    [recorded] = _recorded(catalog.publish(repository, {name: {}}))
    ref = f"component:default/{name}"
    assert recorded.ref == ref
    [production] = recorded.environments
    assert (production.environment, production.version) == ("production", "a" * 40)
    assert deployments.list_deployments(CiQuery(unmatched=True)).items == []
    [attached] = deployments.list_deployments(CiQuery(entities=[ref])).items
    assert attached.entity_refs == [ref]


def test_a_repository_with_two_components_attaches_by_annotation_only(
    catalog: Catalog, processor: DeploymentProcessor, deployments: SqlDeploymentStore
) -> None:
    name = unique("mono")
    repository, info = catalog.repository(name)
    catalog.publish(repository, {f"{name}-api": {}, f"{name}-web": {}})
    assert processor.handle(_status(info, 2, "success", T0)) == []
    assert [d.id for d in deployments.list_deployments(CiQuery(unmatched=True)).items] == [
        f"github:{repository.key}#2"
    ]
    catalog.publish(
        repository, {f"{name}-api": {"github.com/project-slug": f"acme/{name}"}, f"{name}-web": {}}
    )
    [attached] = deployments.list_deployments(CiQuery(repositories=[repository.key])).items
    assert attached.entity_refs == [f"component:default/{name}-api"]


def test_the_strongest_annotation_decides_which_entity_an_event_concerns(
    catalog: Catalog, processor: DeploymentProcessor
) -> None:
    name = unique("svc")
    repository, _info = catalog.repository(name)
    catalog.publish(
        repository,
        {
            f"{name}-by-slug": {"github.com/project-slug": f"acme/{name}"},
            f"{name}-by-name": {"cairn.dev/deployment-name": name},
            f"{name}-by-artifact": {"cairn.dev/artifact": f"pkg:oci/{name}"},
        },
    )
    by_name = cdevent(
        "dev.cdevents.service.deployed.0.2.0",
        f"service/{name}",
        {"environment": {"id": "staging"}, "artifactId": f"pkg:oci/{name}@sha256%3Aabc"},
    )
    [recorded] = _recorded(processor.handle(_event(cdevents.normalise(by_name, "x"))))
    assert recorded.ref == f"component:default/{name}-by-name"
    by_artifact = cdevent(
        "dev.cdevents.service.upgraded.0.2.0",
        "somebody-else",
        {"environment": {"id": "staging"}, "artifactId": f"pkg:oci/{name}@sha256%3Adef"},
    )
    [recorded] = _recorded(processor.handle(_event(cdevents.normalise(by_artifact, "y"))))
    assert recorded.ref == f"component:default/{name}-by-artifact"
    assert recorded.environments[0].version == "sha256:def"
    explicit = normalise_deployment(
        deployment_report(
            entity=f"{name}-by-slug", environment="qa", status="success", version="9"
        ),
        "z",
    )
    [recorded] = _recorded(processor.handle(explicit))
    assert recorded.ref == f"component:default/{name}-by-slug"


def test_an_entity_that_drops_an_annotation_no_longer_catches_what_it_named(
    catalog: Catalog, processor: DeploymentProcessor, deployments: SqlDeploymentStore
) -> None:
    name = unique("renamed")
    repository, _info = catalog.repository(name)
    catalog.publish(repository, {name: {"cairn.dev/deployment-name": f"{name}-old"}})
    catalog.publish(repository, {name: {"cairn.dev/deployment-name": f"{name}-new"}})
    for service, event_id in ((f"{name}-old", "old"), (f"{name}-new", "new")):
        deployed = cdevent(
            "dev.cdevents.service.deployed.0.2.0",
            f"service/{service}",
            {"environment": {"id": "staging"}, "artifactId": f"pkg:oci/{service}@sha256%3Aabc"},
        )
        processor.handle(_event(cdevents.normalise(deployed, event_id)))
    [unmatched] = deployments.list_deployments(CiQuery(unmatched=True)).items
    assert unmatched.entity_refs == [] and f"{name}-old@" in (unmatched.artifact or "")
    [attached] = deployments.list_deployments(CiQuery(entities=[f"component:default/{name}"])).items
    assert f"{name}-new@" in (attached.artifact or "")


def test_states_arriving_out_of_order_end_as_the_newest_says(
    catalog: Catalog, processor: DeploymentProcessor, deployments: SqlDeploymentStore
) -> None:
    name = unique("ooo")
    repository, info = catalog.repository(name)
    catalog.publish(repository, {name: {}})
    ref = f"component:default/{name}"
    for state, seconds in (("success", 40), ("queued", 0), ("in_progress", 40), ("pending", 1)):
        processor.handle(_status(info, 3, state, T0 + timedelta(seconds=seconds)))
    [deployment] = deployments.list_deployments(CiQuery(entities=[ref])).items
    assert deployment.status == "success"
    assert [t.status for t in deployment.transitions] == [
        "queued",
        "pending",
        "in_progress",
        "success",
    ]
    [state] = deployments.environment_states(ref)
    assert (state.last_status, state.version) == ("success", "a" * 40)


def test_a_failed_deployment_leaves_the_previous_version_running_and_a_rollback_is_marked(
    catalog: Catalog, processor: DeploymentProcessor, deployments: SqlDeploymentStore
) -> None:
    name = unique("roll")
    repository, info = catalog.repository(name)
    catalog.publish(repository, {name: {}})
    ref = f"component:default/{name}"
    processor.handle(_status(info, 10, "success", T0, sha="1" * 40))
    processor.handle(_status(info, 11, "success", T0 + timedelta(minutes=10), sha="2" * 40))
    [recorded] = _recorded(
        processor.handle(_status(info, 12, "failure", T0 + timedelta(minutes=20), sha="3" * 40))
    )
    [state] = recorded.environments
    assert (state.version, state.last_status, state.last_version) == ("2" * 40, "failure", "3" * 40)
    [recorded] = _recorded(
        processor.handle(_status(info, 13, "success", T0 + timedelta(minutes=30), sha="1" * 40))
    )
    assert recorded.deployment is not None and recorded.deployment.rollback
    assert recorded.environments[0].version == "1" * 40

    failures = deployments.list_deployments(CiQuery(entities=[ref], statuses=["failure"])).items
    assert [d.id for d in failures] == [f"github:{repository.key}#12"]
    first = deployments.list_deployments(CiQuery(entities=[ref], limit=3))
    assert [d.id[-2:] for d in first.items] == ["13", "12", "11"] and first.next_cursor
    rest = deployments.list_deployments(CiQuery(entities=[ref], limit=3, cursor=first.next_cursor))
    assert [d.id[-2:] for d in rest.items] == ["10"] and rest.next_cursor is None
    recent = deployments.list_deployments(CiQuery(entities=[ref], since=T0 + timedelta(minutes=15)))
    assert {d.id[-2:] for d in recent.items} == {"12", "13"}


def test_owner_and_system_filters_follow_the_attached_entities(
    catalog: Catalog, processor: DeploymentProcessor, deployments: SqlDeploymentStore
) -> None:
    name = unique("own")
    repository, info = catalog.repository(name)
    catalog.publish(repository, {name: {}}, system=f"{name}-system")
    processor.handle(_status(info, 20, "success", T0))
    by_system = deployments.list_deployments(CiQuery(systems=[f"system:default/{name}-system"]))
    assert [d.entity_refs for d in by_system.items] == [[f"component:default/{name}"]]
    assert (
        deployments.list_deployments(
            CiQuery(owners=["group:default/nobody"], entities=[f"component:default/{name}"])
        ).items
        == []
    )
    assert (
        len(
            deployments.list_deployments(
                CiQuery(owners=["group:default/team-pay"], environments=["PRODUCTION"])
            ).items
        )
        >= 1
    )


def test_pipeline_runs_and_commit_times_are_kept(
    catalog: Catalog, processor: DeploymentProcessor, deployments: SqlDeploymentStore
) -> None:
    name = unique("ci")
    repository, info = catalog.repository(name)
    catalog.publish(repository, {name: {}})
    sha = "c" * 40
    push = GitEventReceived(
        source="github",
        delivery_id="p",
        event_type="push",
        repository=repository,
        change=PushReceived(
            ref="refs/heads/main", after=sha, commits=[CommitSeen(id=sha, timestamp=T0)]
        ),
    )
    processor.handle_git_event(push)
    assert deployments.commit_times([(repository.key, sha)]) == {(repository.key, sha): T0}
    for action in ("in_progress", "completed"):
        run = github_workflow_run_payload(
            info,
            77,
            action,
            head_sha=sha,
            started_at=T0,
            updated_at=T0 + timedelta(minutes=2),
            conclusion="success",
        )
        processor.handle(_event(github.normalise("workflow_run", unique("w"), run)))
    [run_record] = deployments.list_pipeline_runs(
        CiQuery(entities=[f"component:default/{name}"])
    ).items
    assert (run_record.status, run_record.duration_seconds, run_record.commit) == (
        "success",
        120.0,
        sha,
    )
    summary = deployments.entity_summary(f"component:default/{name}")
    assert (summary.deployments, summary.pipeline_runs, summary.environments) == (0, 1, [])


def test_the_faust_deployments_runner_publishes_environments_and_dead_letters_poison(
    catalog: Catalog, processor: DeploymentProcessor, catalog_store: SqlCatalogStore, tmp_path: Path
) -> None:
    """The agent's blocking handler (processors/faust_agents.py) is the embedded runner's: a
    batch with an unreadable CI event still records the good one and dead-letters the other."""
    name = unique("ledger")
    repository, info = catalog.repository(name)
    catalog.publish(repository, {name: {}})
    event = _status(info, 9, "success", T0)
    records = [
        LogRecord(CI_EVENTS.name, 0, offset, repository.key, value, 0.0)
        for offset, value in enumerate([b"{not an event", event.model_dump_json().encode()])
    ]
    event_log = SqliteEventLog(tmp_path / "log.db")
    try:
        faust_agents.deployments(processor, event_log, catalog_store, threading.Event())(records)
        consumer = event_log.consumer("assertions", (DEPLOYMENTS.name, DEAD_LETTERS.name))
        published = consumer.poll(100, timeout=1)
        consumer.close()
    finally:
        event_log.close()
    by_topic = {
        topic: [r for r in published if r.topic == topic]
        for topic in {DEPLOYMENTS.name, DEAD_LETTERS.name}
    }
    [recorded] = _recorded(
        [OutgoingRecord(r.topic, r.key, r.value) for r in by_topic[DEPLOYMENTS.name]]
    )
    assert recorded.ref == f"component:default/{name}"
    assert [e.environment for e in recorded.environments] == ["production"]
    [letter] = [
        DeadLettered.model_validate_json(r.value or b"") for r in by_topic[DEAD_LETTERS.name]
    ]
    assert (letter.processor, letter.source_topic, letter.value) == (
        "deployments",
        CI_EVENTS.name,
        "{not an event",
    )


def test_two_processors_deriving_one_entity_at_once_leave_the_newest_state(
    catalog: Catalog, processor: DeploymentProcessor, deployments: SqlDeploymentStore
) -> None:
    """Deployments of one entity can reach two workers (`cairn.ci.events` is keyed by
    repository, ref or subject). Here one worker has read the entity's deployments and is
    about to save the state they give while the other saves a newer deployment and derives
    again: the older derivation must not be what stays."""
    name = unique("race")
    repository, info = catalog.repository(name)
    catalog.publish(repository, {name: {}})
    ref = f"component:default/{name}"
    processor.handle(_status(info, 1, "success", T0, sha="1" * 40))

    inside, newer_done = threading.Event(), threading.Event()

    def slow_derive(current, last):  # the first worker, paused between its read and write
        inside.set()
        newer_done.wait(timeout=1.5)  # with the entity locked, the newer one cannot finish
        return environment_state(current, last)

    first = threading.Thread(
        target=deployments.refresh_environment_states, args=(ref, ["production"], slow_derive)
    )
    first.start()
    assert inside.wait(timeout=10)
    processor.handle(_status(info, 2, "success", T0 + timedelta(minutes=5), sha="2" * 40))
    newer_done.set()
    first.join(timeout=10)
    assert not first.is_alive()
    [state] = deployments.environment_states(ref)
    assert state.version == "2" * 40
