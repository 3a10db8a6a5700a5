"""Deployment states merge by the event's own time and life stage, never by arrival; what an
environment runs follows; match keys and time parsing behave as documented."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from processors.deployments import (
    choose_matches,
    environment_state,
    is_rollback,
    merge_deployment,
    merge_pipeline_run,
)
from services.model.ci_events import (
    CiSubject,
    DeploymentRecord,
    DeploymentReported,
    PipelineRunReported,
    artifact_name,
    artifact_version,
    entity_match_keys,
    parse_since,
    parse_time,
    repository_of_target,
    subject_match_keys,
)

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def report(status: str, at: datetime, **fields: object) -> DeploymentReported:
    return DeploymentReported(
        deployment_id="github.com/acme/pay#1",
        environment="production",
        status=status,  # type: ignore[arg-type]
        occurred_at=at,
        **fields,  # type: ignore[arg-type]
    )


def merged(reports: list[DeploymentReported]) -> DeploymentRecord:
    record = None
    for item in reports:
        record = merge_deployment(record, "github", "github.com/acme/pay", item)
    assert record is not None
    return record


LIFE = [
    report("queued", T0),
    report("in_progress", T0 + timedelta(seconds=1), version="v2"),
    report("success", T0 + timedelta(seconds=30), version="v2", url="https://ci/run/1"),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_every_arrival_order_ends_in_the_same_deployment(order: tuple[int, ...]) -> None:
    record = merged([LIFE[i] for i in order])
    assert record.status == "success"
    assert [t.status for t in record.transitions] == ["queued", "in_progress", "success"]
    assert record.started_at == T0 + timedelta(seconds=1)
    assert record.finished_at == T0 + timedelta(seconds=30)
    assert record.succeeded_at == T0 + timedelta(seconds=30)
    assert record.url == "https://ci/run/1"
    assert record == merged(LIFE)


def test_in_progress_in_the_same_second_as_success_does_not_undo_it() -> None:
    record = merged([report("success", T0), report("in_progress", T0)])
    assert record.status == "success"
    assert record.finished_at == T0


def test_a_later_status_wins_even_after_a_terminal_one() -> None:
    record = merged([report("failure", T0), report("in_progress", T0 + timedelta(minutes=5))])
    assert record.status == "in_progress"
    assert record.finished_at is None


def test_inactive_after_success_keeps_when_it_succeeded() -> None:
    record = merged([report("success", T0), report("inactive", T0 + timedelta(hours=1))])
    assert record.status == "inactive"
    assert record.succeeded_at == T0
    assert record.finished_at == T0


def test_a_repeated_report_changes_nothing() -> None:
    once = merged(LIFE)
    assert merge_deployment(once, "github", None, LIFE[2]) == once


def test_an_older_report_fills_only_what_is_missing() -> None:
    record = merged(
        [
            report("success", T0 + timedelta(seconds=9), version="v3"),
            report("in_progress", T0, version="v2", triggered_by="ana"),
        ]
    )
    assert record.version == "v3"
    assert record.triggered_by == "ana"


def _deployment(version: str, at: datetime, status: str = "success") -> DeploymentRecord:
    return merge_deployment(
        None,
        "api",
        None,
        DeploymentReported(
            deployment_id=f"{version}@{at.isoformat()}",
            environment="Production",
            status=status,  # type: ignore[arg-type]
            occurred_at=at,
            version=version,
        ),
    )


def test_the_environment_runs_the_newest_success_and_shows_the_newest_outcome() -> None:
    running = _deployment("v1", T0)
    failed = _deployment("v2", T0 + timedelta(hours=1), status="failure")
    state = environment_state(running, failed)
    assert (state.environment, state.version, state.deployed_at) == ("Production", "v1", T0)
    assert (state.last_status, state.last_version) == ("failure", "v2")


def test_a_removal_leaves_nothing_running() -> None:
    removed = _deployment("v1", T0 + timedelta(hours=1), status="removed")
    state = environment_state(removed, removed)
    assert state.version is None and state.deployed_at is None
    assert state.last_status == "removed"


def test_deploying_an_older_version_again_is_a_rollback() -> None:
    v1, v2 = _deployment("v1", T0), _deployment("v2", T0 + timedelta(hours=1))
    again = _deployment("v1", T0 + timedelta(hours=2))
    assert is_rollback(again, [v2, v1])
    assert not is_rollback(_deployment("v3", T0 + timedelta(hours=2)), [v2, v1])
    assert not is_rollback(_deployment("v2", T0 + timedelta(hours=2)), [v2, v1])


def test_pipeline_run_duration_is_from_start_to_end() -> None:
    run = None
    for status, at in (("success", T0 + timedelta(minutes=3)), ("in_progress", T0)):
        run = merge_pipeline_run(
            run,
            "cdevents",
            None,
            PipelineRunReported(run_id="r1", status=status, occurred_at=at),  # type: ignore[arg-type]
        )
    assert run is not None
    assert (run.status, run.started_at, run.duration_seconds) == ("success", T0, 180.0)


def test_the_strongest_kind_of_match_wins() -> None:
    found = {
        "slug:github.com/project-slug=acme/pay": ["component:default/a", "component:default/b"],
        "deployment-name:pay": ["component:default/b"],
    }
    assert choose_matches(found) == ["component:default/b"]
    assert choose_matches({}) == []


def test_events_and_entities_compute_the_same_keys() -> None:
    subject = CiSubject(
        repository="github.com/acme/pay",
        project_slug="Acme/Pay",
        slug_annotation="github.com/project-slug",
        deployment_name="service/pay",
        artifact="pkg:oci/pay@sha256%3Aabc?repository_url=ghcr.io",
    )
    entity = {
        "kind": "Component",
        "metadata": {
            "name": "pay",
            "annotations": {
                "github.com/project-slug": "acme/pay",
                "cairn.dev/deployment-name": "pay",
                "cairn.dev/artifact": "pkg:oci/pay",
            },
        },
    }
    event_keys = set(subject_match_keys(subject))
    entity_keys = set(entity_match_keys("component:default/pay", entity))
    assert event_keys & entity_keys == {
        "slug:github.com/project-slug=acme/pay",
        "deployment-name:pay",
        "artifact:pkg:oci/pay",
    }


def test_package_urls_split_into_name_and_version() -> None:
    purl = "pkg:oci/myapp@sha256%3A0b31?repository_url=ghcr.io#sub"
    assert artifact_name(purl) == "pkg:oci/myapp"
    assert artifact_version(purl) == "sha256:0b31"
    assert artifact_name("pkg:npm/%40acme/web@1.2.0") == "pkg:npm/@acme/web"
    assert artifact_name("not a purl") is None


def test_since_takes_durations_and_times() -> None:
    now = datetime(2025, 1, 2, tzinfo=UTC)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("1d12h", now) == now - timedelta(hours=36)
    assert parse_since("2025-01-01T00:00:00Z", now) == datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="duration like 24h"):
        parse_since("yesterday", now)


def test_gitlab_times_parse_to_utc() -> None:
    assert parse_time("2021-04-28 21:50:00 +0200") == datetime(2021, 4, 28, 19, 50, tzinfo=UTC)
    assert parse_time("2016-08-12 15:23:28 UTC") == datetime(2016, 8, 12, 15, 23, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    ("target", "repository"),
    [
        ("https://github.com/acme/src/blob/main/catalog-info.yaml", "github.com/acme/src"),
        ("https://gitlab.com/acme/platform/pay/-/blob/main/c.yaml", "gitlab.com/acme/platform/pay"),
        ("https://gitea.com/acme/pay/src/branch/main/c.yaml", "gitea.com/acme/pay"),
        ("https://bitbucket.org/acme/pay/src/main/blob/c.yaml", "bitbucket.org/acme/pay"),
        ("file:///tmp/remotes/acme/pay.git/blob/main/c.yaml", "localhost/acme/pay"),
        ("https://example.com/catalog-info.yaml", None),
    ],
)
def test_a_catalog_file_address_names_its_repository(target: str, repository: str | None) -> None:
    assert repository_of_target(target) == repository
