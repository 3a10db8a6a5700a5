"""The webhook receivers' HTTP surface: one route per source over the shared pipeline.

`create_ingest_router` is the only thing the composition root needs; it connects nothing
itself (the event log is opened and closed by whoever owns the app's lifespan).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ingest.common import receive_git_delivery
from ingest.github import GitHubWebhooks
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
    """`POST /webhooks/github`, publishing accepted deliveries to `cairn.git.events`."""
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

    return router
