"""Resync requests: the level-triggered way to heal anything a lost event left behind."""

from __future__ import annotations

import uuid

from services.model.events import GitEventReceived, Repository, ResyncRequested


def repository_from_key(
    key: str, clone_url: str, html_url: str, default_branch: str, provider: str = "github"
) -> Repository:
    """Rebuild a repository from its stored key (`host/owner/name`, owner may hold `/`)."""
    host, _, rest = key.partition("/")
    owner, _, name = rest.rpartition("/")
    return Repository(
        host=host,
        owner=owner,
        name=name,
        clone_url=clone_url,
        html_url=html_url,
        default_branch=default_branch,
        provider=provider,  # type: ignore[arg-type]  # the model validates it
    )


def resync_event(repository: Repository, reason: str) -> GitEventReceived:
    return GitEventReceived(
        source="cairn",
        delivery_id=f"resync-{uuid.uuid4()}",
        event_type="resync",
        repository=repository,
        change=ResyncRequested(reason=reason),
    )
