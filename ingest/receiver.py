"""The webhook receivers' HTTP surface: one route per source over the shared pipeline.

`create_ingest_router` and `add_ingest_routes` are all the composition root needs; they
connect nothing themselves (the event log is opened and closed by whoever owns the app's
lifespan).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ingest.bitbucket import BitbucketWebhooks
from ingest.common import receive_git_delivery
from ingest.gitea import GiteaWebhooks
from ingest.github import GitHubWebhooks
from ingest.gitlab import GitLabWebhooks
from services.bus.port import EventLog
from services.settings import WebhookSettings

logger = logging.getLogger(__name__)

_RESPONSES: dict[int | str, dict[str, str]] = {
    202: {"description": "Accepted (durable in the log), a duplicate delivery, or ignored."},
    400: {"description": "Missing delivery headers, or a body that is not a JSON object."},
    401: {"description": "Missing or wrong signature, or unsigned deliveries are refused."},
    413: {"description": "The body exceeds CAIRN_MAX_PAYLOAD_BYTES."},
    503: {"description": "The event log is unavailable; retry after Retry-After seconds."},
}


def create_ingest_router(webhooks: WebhookSettings, log: EventLog) -> APIRouter:
    """`POST /webhooks/{github,gitlab,gitea,forgejo,bitbucket}`, publishing accepted
    deliveries to `cairn.git.events`."""
    github = GitHubWebhooks(webhooks.github_secrets(), insecure=webhooks.insecure_webhooks)
    if not webhooks.github_secrets():
        if webhooks.insecure_webhooks:
            logger.warning(
                "No GitHub webhook secret is configured and --insecure-webhooks is set: "
                "unsigned GitHub deliveries will be accepted."
            )
        else:
            logger.info(
                "No GitHub webhook secret is configured: GitHub deliveries will be refused "
                "until CAIRN_GITHUB_WEBHOOK_SECRET is set."
            )
    limit = webhooks.max_payload_bytes
    router = APIRouter(tags=["ingest"])

    @router.post(
        "/webhooks/github",
        status_code=202,
        summary="Receive a GitHub webhook delivery",
        response_class=JSONResponse,
        responses=_RESPONSES,
    )
    async def receive_github(request: Request) -> JSONResponse:
        return await receive_git_delivery(request, github, log, limit)

    _add_other_git_hosts(router, webhooks, log)
    return router


Receiver = Callable[[Request], Awaitable[Response]]


class WebhookFastPath:
    """ASGI middleware that hands a webhook `POST` straight to its receiver.

    A receiver reads the raw request and builds its own response, so FastAPI's routing,
    dependency solving and inner middleware have nothing to do for it, yet they cost a
    delivery about as much CPU as the receiver's own work. The routes stay on the app
    (the OpenAPI description, and the answers to other methods); this sits inside the
    app's outermost error middleware, so an unexpected exception is still a 500.
    """

    def __init__(self, app: ASGIApp, receivers: Mapping[str, Receiver]) -> None:
        self._app = app
        self._receivers = dict(receivers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            receiver = self._receivers.get(scope["path"])
            if receiver is not None:
                response = await receiver(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


def add_ingest_routes(app: FastAPI, router: APIRouter) -> None:
    """Include the receivers' router in `app`, with `POST`s taking the fast path."""
    app.include_router(router)
    receivers = {
        route.path: route.endpoint
        for route in router.routes
        if isinstance(route, APIRoute) and route.methods == {"POST"}
    }
    app.add_middleware(WebhookFastPath, receivers=receivers)


def _note_missing_secret(host: str, variable: str, insecure: bool) -> None:
    if insecure:
        logger.warning(
            "No %s webhook secret is configured and --insecure-webhooks is set: "
            "unauthenticated %s deliveries will be accepted.",
            host,
            host,
        )
    else:
        logger.info(
            "No %s webhook secret is configured: %s deliveries will be refused until %s is set.",
            host,
            host,
            variable,
        )


def _add_other_git_hosts(router: APIRouter, webhooks: WebhookSettings, log: EventLog) -> None:
    """`POST /webhooks/gitlab`, `/webhooks/gitea`, `/webhooks/forgejo`, `/webhooks/bitbucket`.

    Each answers exactly as GitHub's route does (see ingest/common.py); Gitea and Forgejo
    share one source, so one delivery reaching both routes is processed once.
    """
    insecure = webhooks.insecure_webhooks
    limit = webhooks.max_payload_bytes
    gitlab = GitLabWebhooks(webhooks.gitlab_tokens(), insecure=insecure)
    gitea = GiteaWebhooks(webhooks.gitea_secrets(), insecure=insecure)
    forgejo = GiteaWebhooks(webhooks.gitea_secrets(), insecure=insecure, product="Forgejo")
    bitbucket = BitbucketWebhooks(webhooks.bitbucket_secrets(), insecure=insecure)
    for host, variable, configured in (
        ("GitLab", "CAIRN_GITLAB_WEBHOOK_TOKEN", webhooks.gitlab_tokens()),
        ("Gitea/Forgejo", "CAIRN_GITEA_WEBHOOK_SECRET", webhooks.gitea_secrets()),
        ("Bitbucket", "CAIRN_BITBUCKET_WEBHOOK_SECRET", webhooks.bitbucket_secrets()),
    ):
        if not configured:
            _note_missing_secret(host, variable, insecure)

    @router.post(
        "/webhooks/gitlab",
        status_code=202,
        summary="Receive a GitLab webhook or system hook delivery",
        response_class=JSONResponse,
        responses=_RESPONSES,
    )
    async def receive_gitlab(request: Request) -> JSONResponse:
        return await receive_git_delivery(request, gitlab, log, limit)

    @router.post(
        "/webhooks/gitea",
        status_code=202,
        summary="Receive a Gitea (or Forgejo) webhook delivery",
        response_class=JSONResponse,
        responses=_RESPONSES,
    )
    async def receive_gitea(request: Request) -> JSONResponse:
        return await receive_git_delivery(request, gitea, log, limit)

    @router.post(
        "/webhooks/forgejo",
        status_code=202,
        summary="Receive a Forgejo webhook delivery",
        response_class=JSONResponse,
        responses=_RESPONSES,
    )
    async def receive_forgejo(request: Request) -> JSONResponse:
        return await receive_git_delivery(request, forgejo, log, limit)

    @router.post(
        "/webhooks/bitbucket",
        status_code=202,
        summary="Receive a Bitbucket Cloud webhook delivery",
        response_class=JSONResponse,
        responses=_RESPONSES,
    )
    async def receive_bitbucket(request: Request) -> JSONResponse:
        return await receive_git_delivery(request, bitbucket, log, limit)
