"""The demo's CI/CD deliveries: the last hour of Acme's release pipeline, as GitHub and a
CDEvents-speaking deployer would report it, so `cairn up --demo` shows deployments.

- `payments-api`: a CI workflow run, then its head deployed to staging and to production;
- `checkout-web`: deployed to staging, then a production deployment that fails;
- `notification-service` (in the `platform` monorepo, so its repository cannot name it):
  a CDEvents `service.deployed` to production, matched by its `cairn.dev/deployment-name`.

Times count back from `now`, and ids derive from it, so every run of the demo adds one new
release (a restarted demo keeps its history, as a real pipeline's would).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.demo.ci_payloads import (
    cdevent,
    github_deployment_payload,
    github_deployment_status_payload,
    github_workflow_run_payload,
)
from services.demo.repos import DemoRepository

GITHUB_PATH = "/webhooks/github"
CDEVENTS_PATH = "/events/cdevents"


@dataclass(frozen=True)
class DemoDelivery:
    """One delivery: a GitHub event (`event` names it) or a CDEvent (`event` is None)."""

    path: str
    event: str | None
    payload: dict[str, Any]
    what: str


@dataclass(frozen=True)
class _Stage:
    environment: str
    outcome: str  # success or failure
    minutes_ago: int  # when it was requested; it ends a few minutes later


# repository -> its deployments, oldest first
_RELEASES: dict[str, tuple[_Stage, ...]] = {
    "payments-api": (_Stage("staging", "success", 58), _Stage("production", "success", 35)),
    "checkout-web": (_Stage("staging", "success", 25), _Stage("production", "failure", 12)),
}
_CDEVENTS_SERVICE = ("platform", "notification-service", 5)  # repository, service, minutes ago


def _github_deployment(
    repository: DemoRepository, deployment_id: int, stage: _Stage, now: datetime
) -> list[DemoDelivery]:
    info = repository.repo_info()
    created = now - timedelta(minutes=stage.minutes_ago)
    states = (
        ("in_progress", created + timedelta(minutes=1)),
        (stage.outcome, created + timedelta(minutes=3)),
    )
    what = f"{repository.name} to {stage.environment}"
    deliveries = [
        DemoDelivery(
            GITHUB_PATH,
            "deployment",
            github_deployment_payload(
                info,
                deployment_id,
                sha=repository.head,
                environment=stage.environment,
                created_at=created,
            ),
            f"deployment of {what}",
        )
    ]
    for state, at in states:
        payload = github_deployment_status_payload(
            info,
            deployment_id,
            state,
            sha=repository.head,
            environment=stage.environment,
            created_at=created,
            at=at,
        )
        deliveries.append(
            DemoDelivery(GITHUB_PATH, "deployment_status", payload, f"{what}: {state}")
        )
    return deliveries


def _workflow_run(repository: DemoRepository, run_id: int, now: datetime) -> list[DemoDelivery]:
    started = now - timedelta(minutes=62)
    return [
        DemoDelivery(
            GITHUB_PATH,
            "workflow_run",
            github_workflow_run_payload(
                repository.repo_info(),
                run_id,
                action,
                head_sha=repository.head,
                started_at=started,
                updated_at=started + timedelta(minutes=minutes),
                conclusion="success",
            ),
            f"CI of {repository.name}: {action}",
        )
        for action, minutes in (("requested", 0), ("completed", 3))
    ]


def _service_deployed(repository: DemoRepository, run: int, now: datetime) -> DemoDelivery:
    _repo, service, minutes_ago = _CDEVENTS_SERVICE
    digest = hashlib.sha256(f"{service} {repository.head}".encode()).hexdigest()
    event = cdevent(
        "dev.cdevents.service.deployed.0.3.0",
        f"service/{service}",
        {
            "environment": {"id": "production", "source": "/acme/clusters/eu-west"},
            "artifactId": f"pkg:oci/{service}@sha256%3A{digest}",
        },
        source="/acme/argocd",
        event_id=f"{service}-{run}",
        at=now - timedelta(minutes=minutes_ago),
        spec="0.5.1",
    )
    return DemoDelivery(CDEVENTS_PATH, None, event, f"{service} to production (CDEvents)")


def ci_deliveries(repositories: Sequence[DemoRepository], now: datetime) -> list[DemoDelivery]:
    """The deliveries of one demo release at `now`, in the order a pipeline sends them."""
    by_name = {repository.name: repository for repository in repositories}
    run = int(now.timestamp())
    deliveries: list[DemoDelivery] = []
    if "payments-api" in by_name:
        deliveries += _workflow_run(by_name["payments-api"], run, now)
    for number, (name, stages) in enumerate(_RELEASES.items()):
        if name not in by_name:
            continue
        for offset, stage in enumerate(stages):
            deliveries += _github_deployment(
                by_name[name], run * 10 + 2 * number + offset, stage, now
            )
    if _CDEVENTS_SERVICE[0] in by_name:
        deliveries.append(_service_deployed(by_name[_CDEVENTS_SERVICE[0]], run, now))
    return deliveries


def expected_deployments(deliveries: Sequence[DemoDelivery]) -> int:
    """How many deployments the deliveries report (each GitHub one once, each CDEvent)."""
    return sum(1 for d in deliveries if d.event in ("deployment", None))
